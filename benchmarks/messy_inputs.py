"""Run ``ksc encode``/``decode`` on messy and hostile input meshes; record what came out and what it cost.

Inputs: the open scan, the mesh with holes and the triangle soup of
../shared/meshes, plus files made here: empty, a point cloud, NaN and infinite
coordinates, zero area, an open plane, and a 2-million-face torus. Each
command runs in its own process; its exit status, first error line, wall time
and peak resident memory are recorded. Meshes that encode are decoded with
``ksc decode``'s defaults and compared with the input (``ksc.mesh.metrics``; IoU uses
the input's generalized winding number, so it is defined for open meshes too).
Writes ``benchmarks/results/messy_inputs.{json,md}``.
Run: ``.venv/bin/python -m benchmarks.messy_inputs [--steps N]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import trimesh

from benchmarks.common import SHARED_MESHES, markdown_table, run_measured, write_results
from ksc.format import read_container
from ksc.mesh.io import load_mesh
from ksc.mesh.metrics import compare_meshes

SHARED_MESSY = ("bunny_scan_open.obj", "thingi_96481.obj", "thingi_91120_soup.obj")
BIG_FACES = 2_000_000


def make_inputs(folder: Path) -> dict[str, Path]:
    """Hostile meshes written into ``folder``, by name."""
    files = {
        "empty.obj": b"",
        "point_cloud.ply": b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        b"end_header\n0 0 0\n1 0 0\n0 1 0\n",
        "nan.obj": b"v 0 0 0\nv nan 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\n",
        "infinite.obj": b"v 0 0 0\nv inf 0 0\nv 0 1 0\nf 1 2 3\n",
        "zero_area.obj": b"v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\nf 1 3 2\n",
        "open_plane.obj": b"v -1 -1 0\nv 1 -1 0\nv 1 1 0\nv -1 1 0\nf 1 2 3\nf 1 3 4\n",
    }
    paths = {}
    for name, content in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(content)
    # 2 * major * minor faces: a torus with 2 million triangles.
    big = trimesh.creation.torus(major_radius=1.0, minor_radius=0.3, major_sections=2000, minor_sections=BIG_FACES // 4000)
    paths["torus_2M_faces.ply"] = folder / "torus_2M_faces.ply"
    big.export(paths["torus_2M_faces.ply"])
    return paths


def run_ksc(args: list[str]) -> dict:
    """Run ``ksc ARGS`` in a child process: status, first error line, seconds, peak RSS in MiB."""
    done = run_measured(["ksc.cli", *args])
    stdout, stderr = done["stdout"], done["stderr"]
    errors = [line for line in stderr.splitlines() if line.startswith("ksc: error:")]
    return {
        "status": done["status"],
        "message": errors[0] if errors else stdout.strip().splitlines()[-1] if stdout.strip() else "",
        "traceback": "Traceback" in stderr,
        "seconds": done["seconds"],
        "peak_mib": done["peak_mib"],
    }


def measure(name: str, source: Path, folder: Path, steps: int | None) -> dict:
    encoded, decoded = folder / f"{source.stem}.ksc", folder / f"{source.stem}.decoded.ply"
    options = ["--steps", str(steps)] if steps else []
    row = {"input": name}
    try:
        reference = load_mesh(source)
        row["faces"] = len(reference.faces)
        row["watertight_input"] = bool(reference.is_watertight)
    except Exception as error:
        reference = None
        row["faces"] = None
        row["load"] = str(error)
    encode = run_ksc(["encode", str(source), str(encoded), "-q", *options])
    row.update({f"encode_{k}": v for k, v in encode.items()})
    row["partial_output"] = encode["status"] != 0 and encoded.exists()
    if encode["status"] == 0:
        row["ksc_bytes"] = encoded.stat().st_size
        decode = run_ksc(["decode", str(encoded), str(decoded), "-q"])
        row.update({f"decode_{k}": v for k, v in decode.items()})
        if decode["status"] == 0:
            mesh = trimesh.load(decoded, process=False)
            row["watertight_output"] = bool(mesh.is_watertight)
            row["sheet"] = "sheet" in read_container(encoded.read_bytes()).meta
            if reference is not None:
                error = compare_meshes(reference, mesh)
                row["chamfer_l1"] = error.chamfer_l1
                if not row["sheet"]:  # a sheet has no inside: both insides are slivers by its sides
                    row["iou"] = error.iou
    print(f"{name}: {row}", flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="Training steps (default: ksc's default).")
    parser.add_argument("--meshes", type=Path, default=SHARED_MESHES)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ksc-messy-") as scratch:
        folder = Path(scratch)
        inputs = {name: args.meshes / name for name in SHARED_MESSY if (args.meshes / name).is_file()}
        if len(inputs) < len(SHARED_MESSY):
            print(f"note: some of {SHARED_MESSY} are absent from {args.meshes}", file=sys.stderr)
        inputs.update(make_inputs(folder))
        for name, path in inputs.items():
            rows.append(measure(name, path, folder, args.steps))
    for row in rows:
        row["outcome"] = "encoded" if row["encode_status"] == 0 else row["encode_message"].removeprefix("ksc: error: ")
        row["outcome"] = row["outcome"].replace(str(Path(scratch)) + "/", "")
    columns = [
        ("input", "input", "s"),
        ("faces", "faces", "d"),
        ("outcome", "encode outcome", "s"),
        ("encode_status", "exit", "d"),
        ("encode_seconds", "encode s", ".1f"),
        ("encode_peak_mib", "encode peak MiB", ".0f"),
        ("ksc_bytes", ".ksc bytes", "d"),
        ("decode_seconds", "decode s", ".1f"),
        ("decode_peak_mib", "decode peak MiB", ".0f"),
        ("watertight_output", "closed output", ""),
        ("sheet", "sheet", ""),
        ("chamfer_l1", "Chamfer-L1", ".5f"),
        ("iou", "IoU", ".3f"),
    ]
    steps = f"{args.steps} training steps" if args.steps else "default settings"
    markdown = "\n".join(
        [
            f"# Messy and hostile input meshes ({steps}; made by `python -m benchmarks.messy_inputs`)",
            "",
            "Each command ran in its own process; peak memory is that process's maximum resident set.",
            "No failing command left an output file or printed a traceback"
            if not any(r["partial_output"] or r["encode_traceback"] for r in rows)
            else "SOME FAILING COMMANDS LEFT OUTPUT OR PRINTED A TRACEBACK",
            "",
            markdown_table(
                columns, [{**r, **{key: _yes_no(r.get(key)) for key in ("watertight_output", "sheet")}} for r in rows]
            ),
        ]
    )
    write_results("messy_inputs", {"steps": args.steps, "rows": rows}, markdown)
    print(markdown)


def _yes_no(value):
    return None if value is None else ("yes" if value else "no")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
