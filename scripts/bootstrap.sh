#!/usr/bin/env bash
# Install everything gridplan needs into ./.venv (and, as root on Debian, the system packages it
# needs), then fetch the map assets. Idempotent: a second run reuses what is there.
#
#   bash scripts/bootstrap.sh          # what `gridplan demo` needs
#   bash scripts/bootstrap.sh --test   # also the test tools: headless Chromium, Playwright, hypothesis
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
PY=${PYTHON:-python3}

say() { printf '[bootstrap] %s\n' "$*" >&2; }

# 1. System packages (Debian, as root): venv support, a CJK font for wall maps, poppler for PDF
#    checks, npm to fetch the offline map assets, Chromium for the browser tests.
pkgs=()
"$PY" -c 'import ensurepip' 2>/dev/null || pkgs+=(python3-venv)
fc-list 2>/dev/null | grep -qiE 'Noto Sans CJK|WenQuanYi' || pkgs+=(fonts-noto-cjk)
command -v npm >/dev/null || pkgs+=(npm)
if [ $want_test = 1 ]; then
  command -v pdffonts >/dev/null || pkgs+=(poppler-utils)
  [ -x /usr/bin/chromium ] || pkgs+=(chromium)
fi
if [ ${#pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" fontconfig >/dev/null
  else
    say "missing system packages (${pkgs[*]}); install them (apt-get install ${pkgs[*]}) or run as root"
  fi
fi

# 2. The virtual environment and gridplan itself (editable), re-installed only when setup.cfg changes.
[ -x .venv/bin/python ] || { say "creating .venv"; "$PY" -m venv .venv; }
extras="dask,pandapower"
[ $want_test = 1 ] && extras="$extras,test,browser"
stamp=".venv/.gridplan-installed-$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)-${extras//,/_}"
if [ ! -f "$stamp" ]; then
  say "installing gridplan[$extras] into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$extras]"
  rm -f .venv/.gridplan-installed-*
  touch "$stamp"
fi

# 3. Leaflet and plugins from the npm registry, so map.html works with no network.
bash scripts/fetch_assets.sh
say "ready: .venv/bin/gridplan"
