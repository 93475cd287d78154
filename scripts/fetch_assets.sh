#!/bin/sh
# Fetch the interactive map's web assets (Leaflet, jQuery, Bootstrap, Font Awesome, Leaflet plugins)
# from the npm registry with `npm pack NAME@VERSION` and unpack the needed files into the user
# cache ${XDG_CACHE_HOME:-~/.cache}/gridplan/assets (or $GRIDPLAN_VENDOR_DIR, or --dest DIR), never
# into the installed package. Idempotent: a second run does nothing when a complete copy is found
# (the cache, or gridplan/_vendor in a wheel or a checkout that has one).
#
#   scripts/fetch_assets.sh            # fetch what is missing
#   scripts/fetch_assets.sh --check    # exit 1 if anything is missing
#   scripts/fetch_assets.sh --force    # unpack again
#
# Tarballs are cached in ${XDG_CACHE_HOME:-~/.cache}/gridplan/npm. Needs npm and python3 (stdlib only).
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
py=${PYTHON:-}
if [ -z "$py" ]; then
    if [ -x "$here/.venv/bin/python" ]; then py="$here/.venv/bin/python"; else py=python3; fi
fi
exec "$py" "$here/gridplan/render/assets.py" "$@"
