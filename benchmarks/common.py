"""Helpers shared by the benchmark scripts: finding meshes, writing result tables."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MESHES = REPO_ROOT.parent / "shared" / "meshes"
RESULTS = Path(__file__).resolve().parent / "results"


def shared_meshes(folder: Path = SHARED_MESHES) -> list[Path]:
    """Every mesh of ``folder`` (default ../shared/meshes), sorted; exits with a clear message when it is absent."""
    if not folder.is_dir():
        raise SystemExit(f"benchmark data folder {folder} is absent: it must sit beside the repository (or pass --meshes)")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".obj", ".ply", ".stl", ".off", ".glb"})


def machine_description(device: torch.device) -> str:
    cpu = f"{platform.machine()}, {torch.get_num_threads()} torch threads"
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({cpu})"
    return f"CPU ({cpu})"


def markdown_table(columns: list[tuple[str, str, str]], rows: list[dict]) -> str:
    """``columns`` are (key, heading, format spec); missing values print as '—'."""
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for key, _, spec in columns:
            value = row.get(key)
            cells.append("—" if value is None else format(value, spec))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(name: str, payload: dict, markdown: str, folder: Path = RESULTS) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / f"{name}.json", folder / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(markdown + "\n")
    return json_path, md_path
