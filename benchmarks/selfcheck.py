"""The encoder's self-check (``ksc/encoding/check.py``) on every default file: how far from its limits a correct file is.

For each mesh of both folders with a default file in ``benchmarks/.cache/default/`` (written by ``rd.py``):
the check's Chamfer-L1 and IoU of the file against the repaired input, its seconds, and the margin to the
limits (limit / Chamfer-L1; (1 - limit) / (1 - IoU)). Writes ``benchmarks/results/selfcheck.{json,md}``.
Run: ``.venv/bin/python -m benchmarks.selfcheck``.
"""

from __future__ import annotations

import time

import trimesh

from benchmarks.common import CACHE, MESH_FOLDERS, command_line, markdown_table, shared_meshes, write_results
from ksc.encoding.check import CHECK_RESOLUTION, MAX_CHAMFER, MIN_IOU, check_file
from ksc.mesh.io import consistently_wound, load_mesh
from ksc.mesh.normalize import Transform

COLUMNS = [
    ("mesh", "mesh", "s"),
    ("folder", "folder", "s"),
    ("chamfer_l1", "Chamfer-L1", ".5f"),
    ("chamfer_margin", "limit / Chamfer-L1", ".1f"),
    ("iou", "IoU", ".4f"),
    ("iou_margin", "(1 - limit) / (1 - IoU)", ".1f"),
    ("passed", "passed", "s"),
    ("seconds", "s", ".2f"),
]


def main() -> None:
    rows = []
    for folder in MESH_FOLDERS:
        for path in shared_meshes(folder):
            cached = CACHE / "default" / f"{path.stem}.ksc"
            if not cached.exists():
                continue
            mesh, _ = consistently_wound(load_mesh(path))
            transform = Transform.fit(mesh.vertices)
            unit = trimesh.Trimesh(transform.to_unit(mesh.vertices), mesh.faces, process=False)
            start = time.perf_counter()
            check = check_file(cached.read_bytes(), unit)
            row = {"mesh": path.name, "folder": folder.name, **check.to_dict(), "seconds": time.perf_counter() - start}
            row["chamfer_margin"] = MAX_CHAMFER / check.chamfer_l1
            row["iou_margin"] = (1.0 - MIN_IOU) / max(1e-9, 1.0 - check.iou)
            row["passed"] = "yes" if check.passed else "NO"
            rows.append(row)
            print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
    markdown = "\n".join(
        [
            "# The encoder's self-check on the default files",
            "",
            f"Command: `{command_line().strip()}`. Extraction at {CHECK_RESOLUTION}^3; limits: Chamfer-L1 <= {MAX_CHAMFER},",
            f"IoU >= {MIN_IOU} (`ksc/encoding/check.py`). Files: `benchmarks/.cache/default/` as `rd.py` left them.",
            "",
            markdown_table(COLUMNS, rows),
        ]
    )
    write_results("selfcheck", {"command": command_line(), "rows": rows}, markdown)


if __name__ == "__main__":
    main()
