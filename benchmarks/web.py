"""The web viewer in headless Chromium: how soon a default file is on screen, what the page downloads, and
whether it shows the shape ``ksc preview`` shows.

For every mesh of ../shared/meshes and ../shared/meshes-wide, its default ``.ksc`` (``common.default_file``:
encoded once into ``benchmarks/.cache/default/``) is served by ``ksc view``'s server and opened by
``web/test/browser.mjs`` in Debian's Chromium (software WebGL: SwiftShader, no GPU). Recorded per file: the
milliseconds from the page opening the file to its header read, to the first frame (64³ surface), to the fine
frame (128³); the page's own download (everything but the .ksc); triangles; milliseconds a frame while
orbiting at 1280x720; and the IoU of the page's silhouette with ``ksc preview``'s at 512x512.
``--screenshot bunny.obj docs/viewer.png`` keeps one file's picture of the page (the README's).
Writes ``benchmarks/results/web[-SUFFIX].{json,md}``. Run: ``.venv/bin/python -m benchmarks.web``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
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

BROWSER = REPO_ROOT / "web" / "test" / "browser.mjs"
SIZE = 512
ORBIT_FRAMES = 30
ORBIT_VIEWPORT = "1280x720"


def silhouette(picture: np.ndarray) -> np.ndarray:
    """Pixels (H, W) that are not the white background of an RGB picture (H, W, 3)."""
    return np.any(picture < 250, axis=2)


def measure(ksc_path: Path, scratch: Path, screenshot: Path | None = None) -> dict:
    from PIL import Image

    from ksc.tools.preview import preview

    shot = scratch / "page.png"
    with viewer_page(ksc_path) as url:
        done = subprocess.run(
            ["node", str(BROWSER), url, str(shot), str(SIZE), str(ORBIT_FRAMES), ORBIT_VIEWPORT],
            capture_output=True,
            text=True,
            timeout=300,
        )
    if done.returncode != 0:
        return {"error": last_error_line(done.stderr, done.returncode)}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    row = {
        "ksc_bytes": ksc_path.stat().st_size,
        "state": result["state"],
        "error": result["error"],
        "header_ms": result["timings"].get("load"),
        "first_frame_ms": result["timings"].get("ready"),
        "fine_frame_ms": result["timings"].get("refined"),
        "page_ms": result["pageLoadMs"],
        "download_bytes": result["downloadBytes"],
        "triangles": result["triangles"],
        "orbit_ms": result["orbitMs"],
    }
    if screenshot is not None:  # a 64-colour palette: a third of the bytes, no visible change on a shaded shape
        Image.open(shot).convert("RGB").quantize(64).save(screenshot, optimize=True)
    if result["state"] == "refined":
        page = silhouette(np.asarray(Image.open(shot).convert("RGB")))
        expected = silhouette(preview(ksc_path.read_bytes(), SIZE))
        row["iou_vs_preview"] = float((page & expected).sum() / max(1, (page | expected).sum()))
    return row


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("ksc_bytes", ".ksc bytes", ",d"),
    ("header_ms", "header ms", ".0f"),
    ("first_frame_ms", "first frame ms (64³)", ".0f"),
    ("fine_frame_ms", "fine frame ms (128³)", ".0f"),
    ("page_ms", "page load to fine frame ms", ".0f"),
    ("triangles", "triangles", ",d"),
    ("orbit_ms", f"orbit ms/frame at {ORBIT_VIEWPORT}", ".1f"),
    ("iou_vs_preview", "IoU vs ksc preview", ".3f"),
    ("download_bytes", "page download bytes", ",d"),
    ("error", "error", "s"),
]
MEDIANS = ("first_frame_ms", "fine_frame_ms", "page_ms", "orbit_ms", "iou_vs_preview", "download_bytes")


def summarize(rows: list[dict]) -> list[dict]:
    summary = folder_medians(rows, MEDIANS, lambda row: row.get("state") == "refined")
    for entry in summary:
        members = entry.pop("members")
        entry["worst_first_frame_ms"] = max(r["first_frame_ms"] for r in members)
        entry["min_iou"] = min(r["iou_vs_preview"] for r in members)
    return summary


def save(rows: list[dict], args, machine: str) -> None:
    summary_columns = [
        ("folder", "folder", "s"),
        ("meshes", "meshes", "d"),
        ("first_frame_ms", "first frame ms", ".0f"),
        ("worst_first_frame_ms", "worst first frame ms", ".0f"),
        ("fine_frame_ms", "fine frame ms", ".0f"),
        ("page_ms", "page load to fine frame ms", ".0f"),
        ("orbit_ms", f"orbit ms/frame at {ORBIT_VIEWPORT}", ".1f"),
        ("iou_vs_preview", "IoU vs ksc preview", ".3f"),
        ("min_iou", "lowest IoU", ".3f"),
        ("download_bytes", "page download bytes", ",.0f"),
    ]
    command = command_line()
    summary = summarize(rows)
    markdown = "\n".join(
        [
            "# The web viewer in headless Chromium",
            "",
            f"Machine: {machine}; Debian's Chromium, headless, software WebGL2 (SwiftShader), no GPU.",
            f"Command: `{command.strip()}`. One page load per default file; times are from the page opening the file",
            "(the decoding runs in a worker): header read, first frame (a 64³ grid), fine frame (128³).",
            "'page load to fine frame' counts from navigation, the page's own download included. 'orbit' draws",
            f"{ORBIT_FRAMES} frames at {ORBIT_VIEWPORT}, each read back before the next. IoU: the page's silhouette at",
            f"{SIZE}x{SIZE} against `ksc preview`'s (marching cubes at 128³ in Python, the same camera).",
            "",
            "## Medians",
            "",
            markdown_table(summary_columns, summary),
            "",
            "## Every file",
            "",
            markdown_table(COLUMNS, rows),
        ]
    )
    payload = {"machine": machine, "command": command, "rows": rows, "summary": summary}
    write_results(results_name("web", args.suffix), payload, markdown)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", type=Path, nargs="+", default=list(MESH_FOLDERS))
    parser.add_argument("--only", nargs="*", help="Mesh file names to run (default: all).")
    parser.add_argument("--suffix", default="")
    parser.add_argument(
        "--screenshot", nargs=2, metavar=("MESH", "PNG"), help="Also keep the page's picture of MESH's file (the README's)."
    )
    args = parser.parse_args(argv)
    import torch

    from ksc.tools.serve import viewer_files

    viewer_files()  # fails with what to do when the page is not built
    machine = machine_description(torch.device("cpu"))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for folder, mesh_path, ksc_path in default_files(args.meshes, args.only):
            if ksc_path is None:
                rows.append({"mesh": mesh_path.name, "folder": folder.name, "error": "ksc encode refuses this mesh"})
                continue
            keep = Path(args.screenshot[1]) if args.screenshot and args.screenshot[0] == mesh_path.name else None
            row = {"mesh": mesh_path.name, "folder": folder.name, **measure(ksc_path, Path(scratch), keep)}
            rows.append(row)
            print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
            save(rows, args, machine)
    save(rows, args, machine)


if __name__ == "__main__":
    main()
