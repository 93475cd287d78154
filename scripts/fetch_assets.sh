#!/bin/sh
# Fetch the interactive map's web assets (Leaflet, jQuery, Bootstrap, Font Awesome, Leaflet plugins)
# from the npm registry with `npm pack NAME@VERSION` and unpack the needed files into
# gridplan/_vendor/ (gitignored). Idempotent: a second run does nothing when the files are there.
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
