#!/usr/bin/env bash
# Set up ksc in ./.venv on a fresh Debian machine: Eigen headers for pysdf, the
# pinned CPU build of torch, then ksc itself (editable) with its batch and test tools.
# Safe to re-run; each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=2.13.0

if [ ! -f /usr/include/eigen3/Eigen/Core ]; then
    echo "setup: installing Eigen headers (libeigen3-dev) for pysdf"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq libeigen3-dev >/dev/null
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
    CPATH=/usr/include/eigen3${CPATH:+:$CPATH} "${PIP[@]}" install -e ".[encode,batch,test]"
    touch "$VENV/.ksc-installed"
fi
