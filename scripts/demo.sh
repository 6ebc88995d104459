#!/usr/bin/env bash
# Encode a real mesh, decode it, and print size, compression ratio and error.
# Uses ../shared/meshes/bunny.obj when it exists, else a torus built here.
set -euo pipefail
cd "$(dirname "$0")/.."
KSC=.venv/bin/ksc
OUT=${OUT:-build/demo}
mkdir -p "$OUT"

MESH=${MESH:-../shared/meshes/bunny.obj}
if [ ! -f "$MESH" ]; then
    echo "demo: $MESH not found; encoding a torus instead"
    MESH="$OUT/torus.obj"
    .venv/bin/python -c "import sys, trimesh; trimesh.creation.torus(1.0, 0.35).export(sys.argv[1])" "$MESH"
fi
NAME=$(basename "${MESH%.*}")

"$KSC" encode "$MESH" "$OUT/$NAME.ksc"
"$KSC" decode "$OUT/$NAME.ksc" "$OUT/$NAME.decoded.ply"
echo -n "error against the input: "
"$KSC" compare "$MESH" "$OUT/$NAME.decoded.ply"
