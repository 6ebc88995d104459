#!/usr/bin/env bash
# What a release ships, built and used as a user would: the Python sdist and the wheel built from it (with the
# web viewer inside), installed in a clean virtual environment, and the npm tarball of ksc-decoder, installed in
# an empty folder; each decodes a golden file. The `encode` extra must resolve from wheels alone. Run by
# `make packages` (and CI) after `make setup`, which builds the viewer and web/dist/. Keeps the artifacts in
# dist/ (git-ignored) when KEEP_DIST=1.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
GOLDEN=$REPO/tests/golden/v5.0/torus.ksc
OPEN=$REPO/tests/golden/v5.1/torus-open.ksc  # its holes are cut by the decoder, on the base dependencies too
SHEET=$REPO/tests/golden/v5.1/sheet.ksc  # and a sheet is taken to one side
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "packages: building the sdist and the wheel (python -m build)"
.venv/bin/python -m build --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log"; exit 1; }
WHEEL=$(ls "$WORK"/dist/ksc-*.whl)
.venv/bin/python - "$WHEEL" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
needed = ["ksc/viewer/index.html", "ksc/viewer/ksc-viewer.js", "ksc/viewer/ksc-worker.js", "ksc/py.typed",
          "ksc/format/container.py", "ksc/cli/main.py"]
missing = [name for name in needed if name not in names]
stray = sorted({name.split("/")[0] for name in names} - {"ksc"} - {n.split("/")[0] for n in names if ".dist-info/" in n})
if missing or stray:
    sys.exit(f"packages: the wheel lacks {missing} or holds stray top-level folders {stray}"
             " (build the viewer first: npm --prefix web ci && npm --prefix web run build)")
print(f"packages: {sys.argv[1].rsplit('/', 1)[-1]}: {len(names)} files, the viewer inside")
PY

echo "packages: installing the wheel in a clean virtual environment"
"$PYTHON" -m venv "$WORK/clean"
pip_quietly() {  # pip's own output only when it fails
    "$WORK/clean/bin/python" -m pip -q --disable-pip-version-check "$@" >"$WORK/pip.log" 2>&1 || { tail -30 "$WORK/pip.log"; exit 1; }
}
pip_quietly install "$WHEEL"
(
    cd "$WORK"
    clean/bin/ksc info "$GOLDEN" >/dev/null
    clean/bin/ksc decode "$GOLDEN" decoded.ply -q
    clean/bin/ksc decode "$OPEN" open.ply -q
    clean/bin/ksc decode "$SHEET" sheet.ply -q
    clean/bin/python - "$GOLDEN" <<'PY'
import sys
import ksc, trimesh
from ksc.tools.serve import viewer_files
mesh = trimesh.load_mesh(sys.argv[1])
assert len(mesh.faces) > 1000 and mesh.is_watertight, mesh
viewer_files()  # the page `ksc view` serves is installed
assert not any(name in sys.modules for name in ("torch", "igl", "pysdf")), "decoding imported an encode dependency"
print(f"packages: ksc {ksc.__version__} from the wheel decodes {sys.argv[1].rsplit('/', 1)[-1]}: {len(mesh.faces)} faces; ksc view's page is there")
PY
)
echo "packages: resolving the wheel's encode extra from wheels only (pip --dry-run --only-binary=:all:)"
echo "torch==2.13.0" >"$WORK/torch-cpu.txt"  # the CPU wheel, as scripts/setup.sh pins it
pip_quietly install --dry-run --only-binary=:all: -c "$WORK/torch-cpu.txt" "ksc[encode] @ file://$WHEEL"

echo "packages: packing ksc-decoder (npm pack web/dist) and installing it in an empty folder"
(cd "$WORK" && npm pack "$REPO/web/dist" --silent >/dev/null)
mkdir "$WORK/app"
(
    cd "$WORK/app"
    echo '{"name": "app", "private": true, "type": "module"}' >package.json
    npm install --offline --no-audit --no-fund --silent "$WORK"/ksc-decoder-*.tgz
    node --input-type=module -e "
import { readFileSync } from 'node:fs';
import { decode } from 'ksc-decoder';
const { indices, info } = await decode(readFileSync('$GOLDEN'));
if (!(indices.length > 3000)) throw new Error('ksc-decoder decoded too few triangles');
console.log('packages: ksc-decoder ' + JSON.parse(readFileSync('node_modules/ksc-decoder/package.json')).version
  + ' from its tarball decodes torus.ksc: ' + indices.length / 3 + ' triangles, format ' + info.version.join('.'));
"
)
if [ "${KEEP_DIST:-}" = 1 ]; then
    mkdir -p dist && cp "$WORK"/dist/* "$WORK"/ksc-decoder-*.tgz dist/
    echo "packages: kept in dist/: $(ls dist | tr '\n' ' ')"
fi
