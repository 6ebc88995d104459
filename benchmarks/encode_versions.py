"""Encode time, size and error of today's presets against an earlier ksc's default encode, in one run.

The earlier version (``--against``, a git revision of this repository; default: the last commit of ksc
0.13, the baseline of the encode-time targets) is unpacked with ``git archive`` and installed without
dependencies into a scratch folder; both versions then run as fresh processes on the same interpreter and
packages, one mesh at a time, the earlier one's ``ksc encode IN OUT`` (its own defaults, threads included)
beside today's ``ksc encode --preset P IN OUT`` for each ``--presets`` (``P:STEPS`` adds ``--steps STEPS``).
The order alternates from mesh to mesh, so a drift of this machine's speed falls on both. Every file is
decoded by today's decoder (format 5.0 is read by both) and scored against the input (``ksc.mesh.metrics``).
Writes ``benchmarks/results/encode-versions[-SUFFIX].{json,md}``.
Run: ``.venv/bin/python -m benchmarks.encode_versions --only bunny.obj dragon.obj homer.obj thingi_75496.obj``
(an earlier default encode takes 2-3 minutes per mesh on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import (
    REPO_ROOT,
    both_folders,
    command_line,
    last_error_line,
    machine_description,
    markdown_table,
    results_name,
    run_measured,
    write_results,
)

KSC_0_13 = "b5692c5^"
"""The last commit of ksc 0.13 (the next one made 0.14)."""

# Runs an installed earlier ksc's command line: the editable install of today's ksc is a meta-path finder,
# which would win over sys.path, so it is taken out first.
_EARLIER_CLI = """
import sys
sys.meta_path = [finder for finder in sys.meta_path if "editable" not in repr(finder)]
sys.path.insert(0, sys.argv.pop(1))
from ksc.cli.main import main
sys.argv[0] = "ksc"
main()
"""


def install_revision(revision: str, folder: Path) -> tuple[Path, str]:
    """Install ``revision`` of this repository (no dependencies) under ``folder``; (site folder, its version)."""
    source, site = folder / "source", folder / "site"
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", revision], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(source)]
    subprocess.run(pip, check=True)
    version = next(site.glob("ksc-*.dist-info")).name.removeprefix("ksc-").removesuffix(".dist-info")
    return site, version


def preset_command(run: str) -> list[str]:
    """Today's encode command of ``run``: ``PRESET`` or ``PRESET:STEPS``."""
    preset, _, steps = run.partition(":")
    return ["ksc.cli", "encode", "--preset", preset, *(["--steps", steps] if steps else [])]


def encode_with(command: list[str], mesh: Path, target: Path) -> dict:
    """Wall seconds and bytes of one encode process (``command`` + IN OUT), or its last error line."""
    run = run_measured([*command, str(mesh), str(target)])
    if run["status"] != 0:
        return {"error": last_error_line(run["stderr"], run["status"])}
    return {"seconds": run["seconds"], "bytes": target.stat().st_size}


def score(mesh, target: Path) -> dict:
    """Chamfer-L1 and normal error of the file's default decode against the input ``mesh`` (a trimesh.Trimesh),
    and the version that wrote it."""
    from ksc.decoding.pipeline import decode_mesh
    from ksc.format import read_container
    from ksc.mesh.metrics import compare_meshes

    data = target.read_bytes()
    error = compare_meshes(mesh, decode_mesh(data))
    encoder = read_container(data).meta.get("encoder")
    written_by = encoder.get("ksc") if isinstance(encoder, dict) else None
    return {"chamfer_l1": error.chamfer_l1, "normal_error": error.normal_error, "written_by": written_by}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default=KSC_0_13, help="Git revision of the earlier ksc (default: ksc 0.13's last commit).")
    parser.add_argument("--presets", nargs="+", default=["default", "fast"], help="Today's runs: PRESET or PRESET:STEPS.")
    parser.add_argument("--only", nargs="+", help="Mesh file names (default: every mesh of both folders).")
    parser.add_argument("--suffix", default="")
    args = parser.parse_args(argv)
    from ksc.mesh.io import load_mesh

    meshes = both_folders(args.only)
    if not meshes:
        raise SystemExit("no meshes: the shared folders are absent or --only names none of their files")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ksc-versions-") as scratch:
        scratch = Path(scratch)
        site, version = install_revision(args.against, scratch / "earlier")
        earlier_cli = scratch / "earlier_cli.py"
        earlier_cli.write_text(_EARLIER_CLI)
        runs = [("earlier", [str(earlier_cli), str(site), "encode"])]
        runs += [(preset, preset_command(preset)) for preset in args.presets]
        for index, mesh in enumerate(meshes):
            loaded = load_mesh(mesh)  # once per mesh, for scoring every run's file
            for name, command in runs if index % 2 == 0 else runs[::-1]:
                target = scratch / f"{mesh.stem}-{name}.ksc"
                result = encode_with(command, mesh, target)
                row = {"mesh": mesh.name, "folder": mesh.parent.name, "run": name, **result}
                if "error" not in result:
                    row.update(score(loaded, target))
                rows.append(row)
                print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
    save(rows, args, version)


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("run", "encode", "s"),
    ("written_by", "written by ksc", "s"),
    ("seconds", "seconds", ".1f"),
    ("bytes", "bytes", ",d"),
    ("chamfer_l1", "Chamfer-L1", ".5f"),
    ("normal_error", "normal error", ".4f"),
    ("error", "error", "s"),
]


def save(rows: list[dict], args, version: str) -> None:
    """Per preset, the medians over meshes of its time, bytes and error against the earlier default's."""
    earlier = {row["mesh"]: row for row in rows if row["run"] == "earlier" and "error" not in row}
    summary = []
    for preset in args.presets:
        pairs = [
            (row, earlier[row["mesh"]]) for row in rows if row["run"] == preset and "error" not in row and row["mesh"] in earlier
        ]
        if not pairs:
            continue
        ratios = {
            key: statistics.median(ours[key] / theirs[key] for ours, theirs in pairs)
            for key in ("seconds", "bytes", "chamfer_l1", "normal_error")
        }
        summary.append(
            {
                "preset": preset,
                "meshes": len(pairs),
                "seconds": statistics.median(ours["seconds"] for ours, _ in pairs),
                "earlier_seconds": statistics.median(theirs["seconds"] for _, theirs in pairs),
                **{f"{key}_ratio": value for key, value in ratios.items()},
            }
        )
    import torch

    machine = machine_description(torch.device("cpu"))
    markdown = "\n".join(
        [
            f"# Encoding: today's presets against ksc {version}'s default, in one run",
            "",
            f"Machine: {machine}. Command: `{command_line().strip()}`. Fresh processes, one at a time, wall time",
            f"from start to the written file; ksc {version} (`{args.against}`) with its own defaults, today's with",
            "`--preset P` and its defaults; the order alternates from mesh to mesh. Errors: today's decoder at its",
            "defaults against the input (ksc.mesh.metrics). Ratios: per mesh, today's over the earlier default's; medians.",
            "",
            "## Medians",
            "",
            markdown_table(SUMMARY_COLUMNS, summary),
            "",
            "## Every encode, in the order run",
            "",
            markdown_table(COLUMNS, rows),
        ]
    )
    payload = {"machine": machine, "command": command_line(), "against": args.against, "version": version}
    write_results(results_name("encode-versions", args.suffix), {**payload, "summary": summary, "rows": rows}, markdown)
    print(markdown)


SUMMARY_COLUMNS = [
    ("preset", "today's preset", "s"),
    ("meshes", "meshes", "d"),
    ("seconds", "encode s", ".1f"),
    ("earlier_seconds", "earlier default's s", ".1f"),
    ("seconds_ratio", "time / earlier's", ".3f"),
    ("bytes_ratio", "bytes / earlier's", ".3f"),
    ("chamfer_l1_ratio", "Chamfer-L1 / earlier's", ".3f"),
    ("normal_error_ratio", "normal error / earlier's", ".3f"),
]


if __name__ == "__main__":
    main()
