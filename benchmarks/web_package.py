"""ksc-decoder, the npm package: its size, how soon KSCLoader puts a default file on screen against the bundled
viewer, and how close its JavaScript mesh lies to the Python decoder's.

- **Size**: the minified files of ``web/dist/`` (``npm run build`` in web/), raw and gzipped: what a browser
  loads to decode (the entry module, the worker and the code they share) and the three.js loader.
- **First frame**: for every default file (``common.default_file``), in headless Chromium with software WebGL,
  the bundled viewer (``ksc view``'s page, ``web/test/browser.mjs``: its 64³ first frame and 128³ fine frame)
  and ``web/examples/three.html`` (``KSCLoader`` with ``setPreview(64)``, ``web/test/example.mjs``), each opened
  ``--repeats`` times in turn; medians per file, and their ratio.
- **Positions**: ``decode()`` in Node.js at 128³ (in the calling thread) against Python's ``decode`` on the same
  grid (129 nodes, no decimation): the distance of each JS vertex to Python's surface, and of each Python vertex
  to the JS surface, over the bounding-box diagonal, and both triangle counts.

Writes ``benchmarks/results/web-package[-SUFFIX].{json,md}``. Run: ``.venv/bin/python -m benchmarks.web_package``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import (
    MESH_FOLDERS,
    REPO_ROOT,
    command_line,
    default_files,
    folder_medians,
    last_error_line,
    machine_description,
    markdown_table,
    results_name,
    viewer_page,
    write_results,
)

WEB = REPO_ROOT / "web"
DIST = WEB / "dist"
CELLS = 128


def package_sizes() -> list[dict]:
    """Bytes of each minified file of web/dist/, raw and gzipped (level 9), and the totals a browser loads."""
    rows = []
    for path in sorted(DIST.glob("*.js")):
        data = path.read_bytes()
        rows.append({"file": path.name, "bytes": len(data), "gzip_bytes": len(gzip.compress(data, 9, mtime=0))})
    decoding = [row for row in rows if row["file"].startswith("ksc-")]
    totals = [("decode(): module + worker + shared code", decoding), ("with the three.js loader", list(rows))]
    for name, members in totals:
        rows.append({"file": name, **{key: sum(r[key] for r in members) for key in ("bytes", "gzip_bytes")}})
    return rows


def _node(arguments: list[str], **kwargs) -> dict:
    done = subprocess.run(["node", *arguments], capture_output=True, text=True, timeout=600, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(last_error_line(done.stderr, done.returncode))
    return json.loads(done.stdout.strip().splitlines()[-1])


def viewer_first_frame(ksc_path: Path, picture: Path) -> dict:
    """The bundled viewer's timings (ms from opening the file) on ``ksc_path``, served as ``ksc view`` does."""
    with viewer_page(ksc_path) as url:
        result = _node([str(WEB / "test" / "browser.mjs"), url, str(picture), "256"])
    if result["state"] != "refined":
        raise RuntimeError(f"the viewer shows an error: {result['error']}")
    return {"first": result["timings"]["ready"], "fine": result["timings"]["refined"]}


def loader_first_frame(ksc_path: Path, picture: Path) -> dict:
    """The three.js example page's timings (ms from KSCLoader.load to the preview's and the fine frame)."""
    result = _node([str(WEB / "test" / "example.mjs"), str(ksc_path), str(picture)])
    if result["state"] != "refined":
        raise RuntimeError(f"the example page shows an error: {result['error']}")
    return {"first": result["ms"], "fine": result["refinedMs"]}


def positions(ksc_path: Path) -> dict:
    """JS decode() against Python's decode at the same grid, distances over the bounding-box diagonal."""
    from ksc.decoding.pipeline import decode
    from ksc.mesh.metrics import surface_distances

    js = _node([str(WEB / "test" / "package-decode.mjs"), str(ksc_path), str(CELLS)])
    python = decode(ksc_path.read_bytes(), resolution=CELLS + 1, faces=0)
    js_vertices = np.array(js["positions"], np.float64).reshape(-1, 3)
    js_faces = np.array(js["indices"], np.int64).reshape(-1, 3)
    diagonal = float(np.linalg.norm(python.vertices.max(axis=0) - python.vertices.min(axis=0)))
    to_python, _ = surface_distances(js_vertices, python.vertices, python.faces.astype(np.int64))
    to_js, _ = surface_distances(python.vertices, js_vertices, js_faces)
    to_python, to_js = to_python / diagonal, to_js / diagonal
    return {
        "js_to_python_mean": float(to_python.mean()),
        "js_to_python_p99": float(np.percentile(to_python, 99)),
        "js_to_python_max": float(to_python.max()),
        "python_to_js_max": float(to_js.max()),
        "js_triangles": len(js_faces),
        "python_triangles": len(python.faces),
        "js_decode_ms": js["info"]["ms"],
    }


def measure(ksc_path: Path, scratch: Path, repeats: int) -> dict:
    viewer, loader = [], []
    for _ in range(repeats):  # in turn, so that a slow spell of the machine falls on both
        viewer.append(viewer_first_frame(ksc_path, scratch / "viewer.png"))
        loader.append(loader_first_frame(ksc_path, scratch / "loader.png"))
    row = {
        "ksc_bytes": ksc_path.stat().st_size,
        "viewer_first_ms": statistics.median(r["first"] for r in viewer),
        "loader_first_ms": statistics.median(r["first"] for r in loader),
        "viewer_fine_ms": statistics.median(r["fine"] for r in viewer),
        "loader_fine_ms": statistics.median(r["fine"] for r in loader),
    }
    row["first_ratio"] = row["loader_first_ms"] / row["viewer_first_ms"]
    row.update(positions(ksc_path))
    return row


SIZE_COLUMNS = [("file", "file", "s"), ("bytes", "minified bytes", ",d"), ("gzip_bytes", "gzipped bytes", ",d")]
COLUMNS = [
    ("mesh", "mesh", "s"),
    ("ksc_bytes", ".ksc bytes", ",d"),
    ("viewer_first_ms", "viewer first frame ms", ".0f"),
    ("loader_first_ms", "KSCLoader first frame ms", ".0f"),
    ("first_ratio", "KSCLoader / viewer", ".2f"),
    ("viewer_fine_ms", "viewer 128³ ms", ".0f"),
    ("loader_fine_ms", "KSCLoader 128³ ms", ".0f"),
    ("js_to_python_mean", "JS → Python mean", ".1e"),
    ("js_to_python_p99", "JS → Python p99", ".1e"),
    ("js_to_python_max", "JS → Python max", ".1e"),
    ("python_to_js_max", "Python → JS max", ".1e"),
    ("js_triangles", "JS triangles", ",d"),
    ("python_triangles", "Python triangles (raw)", ",d"),
    ("error", "error", "s"),
]
MEDIANS = ("first_ratio", "viewer_first_ms", "loader_first_ms", "js_to_python_p99", "js_to_python_max", "python_to_js_max")


def save(sizes: list[dict], rows: list[dict], args, machine: str) -> None:
    summary = folder_medians(rows, MEDIANS, lambda row: "error" not in row)
    for entry in summary:
        members = entry.pop("members")
        entry["worst_first_ratio"] = max(r["first_ratio"] for r in members)
        entry["worst_js_to_python_max"] = max(r["js_to_python_max"] for r in members)
    summary_columns = [
        ("folder", "folder", "s"),
        ("meshes", "meshes", "d"),
        ("first_ratio", "KSCLoader / viewer first frame", ".2f"),
        ("worst_first_ratio", "worst ratio", ".2f"),
        ("js_to_python_p99", "JS → Python p99", ".1e"),
        ("js_to_python_max", "JS → Python max", ".1e"),
        ("worst_js_to_python_max", "worst JS → Python max", ".1e"),
        ("python_to_js_max", "Python → JS max", ".1e"),
    ]
    command = command_line()
    markdown = "\n".join(
        [
            "# ksc-decoder: size, first frame through KSCLoader, positions against Python",
            "",
            f"Machine: {machine}; Node.js, Debian's Chromium headless with software WebGL2 (SwiftShader), no GPU.",
            f"Command: `{command.strip()}`.",
            "",
            "## Size of web/dist/ (minified)",
            "",
            markdown_table(SIZE_COLUMNS, sizes),
            "",
            f"## Medians ({args.repeats} page loads of each kind per file, in turn)",
            "",
            "First frame: ms from the page opening the file to its first drawn surface: the viewer's 64³ surface,",
            "KSCLoader's 64³ preview (`setPreview(64)`, as `web/examples/three.html` asks). Positions: at 128³, the",
            "distance of each vertex of one decoder's mesh to the other's surface over the bounding-box diagonal",
            "(both marching cubes on the same grid edges; Python's not decimated).",
            "",
            markdown_table(summary_columns, summary),
            "",
            "## Every file",
            "",
            markdown_table(COLUMNS, rows),
        ]
    )
    payload = {"machine": machine, "command": command, "sizes": sizes, "rows": rows, "summary": summary}
    write_results(results_name("web-package", args.suffix), payload, markdown)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", type=Path, nargs="+", default=list(MESH_FOLDERS))
    parser.add_argument("--only", nargs="*", help="Mesh file names to run (default: all).")
    parser.add_argument("--repeats", type=int, default=3, help="Page loads of each kind per file (median).")
    parser.add_argument("--suffix", default="")
    args = parser.parse_args(argv)
    import torch

    from ksc.tools.serve import viewer_files

    viewer_files()
    if not (DIST / "ksc-decoder.js").is_file():
        sys.exit("web/dist/ is not built: run `make setup` (npm run build in web/)")
    machine = machine_description(torch.device("cpu"))
    sizes = package_sizes()
    print(markdown_table(SIZE_COLUMNS, sizes), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for folder, mesh_path, ksc_path in default_files(args.meshes, args.only):
            row = {"mesh": mesh_path.name, "folder": folder.name}
            if ksc_path is None:
                row["error"] = "ksc encode refuses this mesh"
            else:
                try:
                    row.update(measure(ksc_path, Path(scratch), args.repeats))
                except RuntimeError as error:
                    row["error"] = str(error)
            rows.append(row)
            print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
            save(sizes, rows, args, machine)
    save(sizes, rows, args, machine)


if __name__ == "__main__":
    main()
