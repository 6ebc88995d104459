#!/usr/bin/env bash
# Set up ksc in ./.venv on a fresh Debian machine: Eigen headers for pysdf, the
# pinned CPU build of torch, then ksc itself (editable) with its batch and test tools;
# the web viewer built from web/ with npm, and Debian's Chromium for its browser tests.
# Safe to re-run; each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=2.13.0

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
APT_UPDATED=""
apt_install() {
    [ -n "$APT_UPDATED" ] || { $SUDO apt-get update -qq && APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if [ ! -f /usr/include/eigen3/Eigen/Core ]; then
    echo "setup: installing Eigen headers (libeigen3-dev) for pysdf"
    apt_install libeigen3-dev
fi

# The viewer's browser tests run Debian's Chromium headless; without it they skip, saying why.
if [ ! -x /usr/bin/chromium ]; then
    echo "setup: installing Chromium (chromium, chromium-driver) for the web viewer's tests"
    apt_install chromium chromium-driver || echo "setup: warning: Chromium did not install; the browser tests will skip" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip -q --disable-pip-version-check)

# Without torch, an unpinned requirement would pull a multi-GB CUDA build: pin the CPU wheel first.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "setup: installing torch==$TORCH_VERSION (CPU)"
    "${PIP[@]}" install "torch==$TORCH_VERSION"
fi

# pysdf's setup.py misreads Eigen 3.4's version unless the headers are on CPATH.
if ! "$VENV/bin/python" -c "import ksc.format, pysdf, igl, distributed" 2>/dev/null || [ pyproject.toml -nt "$VENV/.ksc-installed" ]; then
    echo "setup: installing ksc and its dependencies"
    CPATH=/usr/include/eigen3${CPATH:+:$CPATH} "${PIP[@]}" install -e ".[encode,pysdf,batch,test]"
    touch "$VENV/.ksc-installed"
fi

# The web code: npm packages pinned by web/package-lock.json; the viewer bundled into ksc/viewer/ (served by
# `ksc view`) and the npm package ksc-decoder into web/dist/ (`npm pack web/dist`).
if command -v npm >/dev/null 2>&1; then
    if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
        echo "setup: installing the web viewer's npm packages"
        (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
            || echo "setup: warning: npm ci failed in web/; \`ksc view\` and the viewer's tests will not work" >&2
    fi
    (cd web && npm run --silent build) || echo "setup: warning: the web viewer did not build" >&2
else
    echo "setup: warning: npm not found; \`ksc view\` and the viewer's tests need Node.js 18+ and npm" >&2
fi
