"""The npm package ksc-decoder (web/dist/, built by the set-up): packed with ``npm pack``, installed from the
tarball into a scratch app, and used there as an app would: ``decode()`` in Node.js against Python's decode,
its refusals, its type declarations, the README's snippets and the three.js example page in headless Chromium.

Each test skips, saying what is missing, where Node.js, npm, the built package or Chromium is not there.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import ksc
from ksc.decoding.pipeline import decode
from ksc.errors import KscFormatError
from ksc.mesh.holes import boundary_loops
from ksc.mesh.metrics import surface_distances
from ksc.mesh.topology import weld_by_position

REPO = Path(__file__).resolve().parent.parent
WEB = REPO / "web"
DIST = WEB / "dist"
GOLDEN = sorted((REPO / "tests" / "golden").glob("v*/*.ksc"))
CURRENT = REPO / "tests" / "golden" / "v5.0" / "torus.ksc"
CHROMIUM = Path("/usr/bin/chromium")
CELLS = 64
POSITION_TOLERANCE = 1e-6
"""Of the bounding-box diagonal: JS vertices against Python's surface on the same grid. Both run marching cubes
on the same grid edges, so they differ by float rounding (~1e-7; the issue's target is 1e-4)."""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: the npm package cannot be built or used (make setup needs Node.js and npm)")
    return found


def _chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium for the browser tests")
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        pytest.skip("playwright-core is missing in web/node_modules: run `make setup`")


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Path:
    """A scratch app folder with the packed ksc-decoder installed from its tarball (no registry reached)."""
    npm = _tool("npm")
    _tool("node")
    if not (DIST / "package.json").is_file():
        pytest.skip("web/dist/ is missing: run `make setup` (npm run build in web/)")
    scratch = tmp_path_factory.mktemp("npm")
    packed = subprocess.run([npm, "pack", str(DIST), "--silent"], cwd=scratch, capture_output=True, text=True, timeout=120)
    assert packed.returncode == 0, packed.stderr
    tarball = scratch / packed.stdout.strip().splitlines()[-1]
    app = scratch / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "app", "private": True, "type": "module"}))
    install = [npm, "install", "--offline", "--no-audit", "--no-fund", str(tarball)]
    installed = subprocess.run(install, cwd=app, capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr
    return app


def _node_in(app: Path, script: str, request: dict) -> dict | list:
    (app / "run.mjs").write_text(script)
    done = subprocess.run(["node", "run.mjs"], cwd=app, input=json.dumps(request), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


DECODE_SCRIPT = """
import { readFileSync } from "node:fs";
import { decode, KscFormatError } from "ksc-decoder";

const { files, cells } = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const path of files) {
  const stages = [];
  try {
    const onProgress = (event) => stages.push([event.stage, event.cells ?? null]);
    const mesh = await decode(readFileSync(path), { cells, onProgress });
    results.push({ positions: Array.from(mesh.positions), indices: Array.from(mesh.indices), spheres: Array.from(mesh.spheres),
                   info: mesh.info, stages });
  } catch (error) {
    results.push({ error: error.message, formatError: error instanceof KscFormatError });
  }
}
console.log(JSON.stringify(results));
"""


def test_the_package_states_kscs_version_and_web_package_json_none():
    if not (DIST / "package.json").is_file():
        pytest.skip("web/dist/ is missing: run `make setup` (npm run build in web/)")
    manifest = json.loads((DIST / "package.json").read_text())
    assert manifest["name"] == "ksc-decoder" and manifest["version"] == ksc.__version__
    assert "three" in manifest["peerDependencies"] and not manifest.get("dependencies")
    assert "version" not in json.loads((WEB / "package.json").read_text())  # pyproject.toml is the one place


SHEETS = [path for path in GOLDEN if path.stem == "sheet"]
SHEET_CELLS = 128
"""A sheet's shell is taken to one side from 126 cells on (both decoders): the sheets are compared there."""


def test_installed_package_decodes_every_golden_file_where_python_does(app):
    volumes = [path for path in GOLDEN if path not in SHEETS]
    results = _node_in(app, DECODE_SCRIPT, {"files": [str(path) for path in volumes], "cells": CELLS})
    assert len(results) == len(volumes) >= 5
    for path, result in zip(volumes, results, strict=True):
        assert "positions" in result, (path, result)
        expected = decode(path.read_bytes(), resolution=CELLS + 1, faces=0)
        positions = np.array(result["positions"]).reshape(-1, 3)
        faces = np.array(result["indices"]).reshape(-1, 3)
        lo, hi = expected.vertices.min(axis=0), expected.vertices.max(axis=0)
        diagonal = float(np.linalg.norm(hi - lo))
        # In the input's coordinates: the transform is applied (a normalized-frame mesh would be far off).
        distance, _ = surface_distances(positions, expected.vertices, expected.faces.astype(np.int64))
        if expected.network.holes:  # a triangle on a cap's edge may be cut by one decoder and kept by the other
            cell = 2 * expected.network.bound / CELLS * expected.network.transform.scale
            assert np.mean(distance > POSITION_TOLERANCE * diagonal) < 1e-3 and distance.max() < 3 * cell, path
        else:
            assert distance.max() <= POSITION_TOLERANCE * diagonal, (path, distance.max() / diagonal)
        assert np.abs(positions.min(axis=0) - lo).max() < 0.01 * diagonal, path
        assert faces.max() < len(positions) and len(faces) > 1000
        spheres = np.array(result["spheres"]).reshape(-1, 4)
        field, transform = expected.network.field, expected.network.transform
        np.testing.assert_allclose(spheres[:, :3], transform.to_original(field.centres), atol=1e-4 * diagonal)
        np.testing.assert_allclose(spheres[:, 3], field.radii * transform.scale, atol=1e-4 * diagonal)
        info = result["info"]
        assert info["version"] == list(expected.network.container.version) and info["cells"] == CELLS
        assert result["stages"] == [["header", None]] + [["surface", size] for size in (16, 32, 64)]


def test_installed_package_takes_a_sheet_to_one_side_where_python_does(app):
    """The JS decoder's normals come from the grid, Python's from the network's gradient: each moves the shell by
    its own normals, so the sheets agree to a fraction of a cell, not to float precision."""
    assert SHEETS, "no golden sheet"
    results = _node_in(app, DECODE_SCRIPT, {"files": [str(path) for path in SHEETS], "cells": SHEET_CELLS})
    for path, result in zip(SHEETS, results, strict=True):
        expected = decode(path.read_bytes(), resolution=SHEET_CELLS + 1, faces=0)
        positions = np.array(result["positions"]).reshape(-1, 3)
        faces = np.array(result["indices"]).reshape(-1, 3)
        diagonal = float(np.linalg.norm(np.ptp(expected.vertices, axis=0)))
        there, _ = surface_distances(positions, expected.vertices, expected.faces.astype(np.int64))
        back, _ = surface_distances(expected.vertices, positions, faces.astype(np.int64))
        for distance in (there, back):
            assert distance.mean() < 5e-4 * diagonal and distance.max() < 1e-2 * diagonal, path
        assert len(boundary_loops(weld_by_position(positions, faces)[1])) == 1  # open at its edge, and nowhere else
        assert len(faces) == pytest.approx(len(expected.faces), rel=0.05)  # one side, as Python keeps


def test_installed_package_refuses_what_python_refuses_with_its_message(app):
    data = CURRENT.read_bytes()
    cases = {"truncated": data[:100], "future": data[:4] + bytes([9, 0]) + data[6:], "not ksc": b"solid cube\n" * 10}
    files = {}
    for name, bad in cases.items():
        files[name] = app / f"{name.replace(' ', '-')}.ksc"
        files[name].write_bytes(bad)
    results = _node_in(app, DECODE_SCRIPT, {"files": [str(path) for path in files.values()], "cells": CELLS})
    for (name, bad), result in zip(cases.items(), results, strict=True):
        with pytest.raises(KscFormatError) as refused:
            decode(bad)
        assert result == {"error": str(refused.value), "formatError": True}, name


def test_decode_options_are_checked(app):
    script = """
import { decode } from "ksc-decoder";
const out = [];
for (const options of [{ cells: 100 }, { cells: 1024 }, { cells: 64, preview: 64 }, { onProgress: 3 }]) {
  try {
    await decode(new Uint8Array(8), options);
    out.push("accepted");
  } catch (error) {
    out.push(`${error.name}: ${error.message}`);
  }
}
try { await decode("bunny.ksc"); } catch (error) { out.push(`${error.name}: ${error.message}`); }
console.log(JSON.stringify(out));
"""
    assert _node_in(app, script, {}) == [
        "RangeError: cells must be 16 times a power of two up to 512, got 100",
        "RangeError: cells must be 16 times a power of two up to 512, got 1024",
        "RangeError: preview must be a coarser grid than cells (64), got 64",
        "TypeError: onProgress must be a function",
        "TypeError: decode() takes the file's bytes as a Uint8Array or an ArrayBuffer",
    ]


def test_type_declarations_accept_the_api_and_reject_misuse(app):
    tsc = WEB / "node_modules" / ".bin" / "tsc"
    if not tsc.exists() or not (WEB / "node_modules" / "@types" / "three").is_dir():
        pytest.skip("typescript or @types/three is missing in web/node_modules: run `make setup`")
    good = """
import { decode, KscFormatError, type KscMesh } from "ksc-decoder";
import { KSCLoader } from "ksc-decoder/three";
const mesh: KscMesh = await decode(new Uint8Array(8), { cells: 64, preview: 32, onProgress: (event) => {
  if (event.stage === "surface") console.log(event.fraction);
} });
const positions: Float32Array = mesh.positions;
const version: [number, number] = mesh.info.version;
const geometry = await new KSCLoader().setCells(128).setPreview(64).loadAsync("bunny.ksc");
console.log(positions, version, geometry.getAttribute("normal").count, KscFormatError);
"""
    bad = """
import { decode } from "ksc-decoder";
await decode("bunny.ksc");
const mesh = await decode(new Uint8Array(8), { cells: "64" });
const n: string = mesh.indices;
"""
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "module": "esnext",
            "target": "es2022",
            "moduleResolution": "bundler",
            "types": [],
            "lib": ["es2022", "dom"],
            "paths": {"three": [str(WEB / "node_modules" / "@types" / "three")]},
        },
        "files": ["check.ts"],
    }
    (app / "tsconfig.json").write_text(json.dumps(config))
    outcomes = []
    for source in (good, bad):
        (app / "check.ts").write_text(source)
        outcomes.append(subprocess.run([str(tsc), "-p", "tsconfig.json"], cwd=app, capture_output=True, text=True, timeout=300))
    assert outcomes[0].returncode == 0, outcomes[0].stdout[-3000:]
    errors = re.findall(r"check\.ts\(\d+,\d+\): error", outcomes[1].stdout)
    assert outcomes[1].returncode != 0 and len(errors) == 3, outcomes[1].stdout  # bytes, cells and indices


def _readme_snippets() -> dict[str, list[str]]:
    """The fenced code blocks of the README's "In your app" section, by language."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## In your app\n", 1)[1].split("\n## ", 1)[0]
    blocks: dict[str, list[str]] = {}
    for language, code in re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S):
        blocks.setdefault(language, []).append(code)
    return blocks


def test_readme_js_snippets_work_as_printed_with_the_installed_package(app):
    _chromium()
    three, plain = _readme_snippets()["js"]
    request = {
        "package": str(app / "node_modules" / "ksc-decoder"),
        "file": str(CURRENT),
        "snippets": [
            {"code": three, "report": "({triangles: scene.children[0].geometry.index.count / 3})"},
            {"code": plain, "report": "({triangles: indices.length / 3, vertices: positions.length / 3})"},
        ],
    }
    done = subprocess.run(
        ["node", str(WEB / "test" / "snippets.mjs")], input=json.dumps(request), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loader, decoded = json.loads(done.stdout)
    assert "outcome" in loader and "outcome" in decoded, (loader, decoded)
    assert loader["outcome"]["triangles"] == decoded["outcome"]["triangles"] > 10000  # both at the default grid


def test_readme_trimesh_snippet_works_as_printed(tmp_path, monkeypatch):
    (snippet,) = _readme_snippets()["python"]
    shutil.copy(CURRENT, tmp_path / "bunny.ksc")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    assert len(scope["mesh"].faces) == len(decode(CURRENT.read_bytes()).faces)


def _example(path: Path, picture: Path) -> dict:
    command = ["node", str(WEB / "test" / "example.mjs"), str(path), str(picture)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_three_example_page_renders_a_golden_file_through_the_loader(tmp_path):
    _tool("node")
    _chromium()
    if not (DIST / "three.js").is_file() or not (WEB / "node_modules" / "three").is_dir():
        pytest.skip("web/dist/ or three in web/node_modules is missing: run `make setup`")
    from PIL import Image

    result = _example(CURRENT, tmp_path / "page.png")
    assert result["state"] == "refined" and not result["messages"], result
    assert result["ms"] < result["refinedMs"]  # the 64^3 preview came first
    assert result["triangles"] == len(decode(CURRENT.read_bytes(), resolution=129, faces=0).faces)  # torus: 2E both ways
    picture = np.asarray(Image.open(tmp_path / "page.png").convert("RGB"))
    drawn = np.any(picture < 250, axis=2).mean()
    assert 0.1 < drawn < 0.9, drawn  # the shape is on screen, framed

    (tmp_path / "truncated.ksc").write_bytes(CURRENT.read_bytes()[:100])
    refused = _example(tmp_path / "truncated.ksc", tmp_path / "error.png")
    with pytest.raises(KscFormatError) as expected:
        decode(CURRENT.read_bytes()[:100])
    assert refused["state"] == "error" and refused["error"] == str(expected.value)
