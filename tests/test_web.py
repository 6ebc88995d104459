"""The web viewer: its JavaScript reader and network against Python's (node), the page in headless Chromium,
`ksc view` and `ksc preview`.

The JavaScript tests need Node.js and the npm packages of web/ (``make setup`` installs them), the browser
tests Debian's Chromium too; each skips, saying what is missing, where they are not installed.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ksc.cli.main import main
from ksc.decoding.pipeline import load_field, verify
from ksc.errors import KscFormatError
from ksc.format.testing import header_paths, pack_raw, reseal, unpack_raw
from ksc.tools.preview import CAMERA, png_bytes, preview, project, render

REPO = Path(__file__).resolve().parent.parent
WEB = REPO / "web"
GOLDEN = sorted((REPO / "tests" / "golden").glob("v*/*.ksc"))
CURRENT = REPO / "tests" / "golden" / "v5.0" / "torus.ksc"
CHROMIUM = Path("/usr/bin/chromium")
SIZE = 384


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript decoder cannot be run (make setup needs Node.js and npm)")
    if not (WEB / "node_modules" / "fzstd").is_dir() or not (WEB / "node_modules" / "@msgpack" / "msgpack").is_dir():
        pytest.skip("web/node_modules is missing: run `make setup` (npm ci in web/)")
    return node


def js_decode(files: list[bytes], points: np.ndarray | None = None, cells: int = 0) -> list[dict]:
    """What web/test/decode.mjs says of each file: {version, model, bound, values, surface} or {error} or {crash}."""
    request = {"files": [base64.b64encode(data).decode() for data in files], "cells": cells}
    request["points"] = [] if points is None else np.asarray(points, np.float32).reshape(-1).tolist()
    done = subprocess.run(
        [_node(), str(WEB / "test" / "decode.mjs")], input=json.dumps(request), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


# -- the reader and the network, in node ---------------------------------------------------------------------------


def test_js_reader_reads_every_golden_file_as_python_does():
    """The header as both readers see it; the network's values are the contract's (tests/test_network_contract.py)."""
    results = js_decode([path.read_bytes() for path in GOLDEN])
    assert len(results) == len(GOLDEN) >= 5
    for path, result in zip(GOLDEN, results, strict=True):
        decoded = load_field(path.read_bytes())
        assert "values" in result, (path, result)
        assert result["version"] == list(decoded.container.version)
        assert result["bound"] == pytest.approx(decoded.bound)
        assert {k: result["model"][k] for k in decoded.config.to_dict()} == decoded.config.to_dict()


def test_js_surface_is_closed_and_encloses_what_python_decodes():
    import trimesh

    from ksc.decoding.pipeline import decode

    data = CURRENT.read_bytes()
    (result,) = js_decode([data], cells=64)
    surface = result["surface"]
    assert surface["triangles"] > 5000 and surface["unshared"] == 0  # a closed surface, outward (positive volume)
    decoded = decode(data, 65, faces=0)
    expected = trimesh.Trimesh(decoded.network.transform.to_unit(decoded.vertices), decoded.faces, process=False).volume
    assert surface["volume"] == pytest.approx(expected, rel=0.02)


def _mutations(data: bytes, seed: int) -> list[bytes]:
    """Truncations, resealed bit flips and header fields replaced by wrong values, from one good file."""
    rng = np.random.default_rng(seed)
    cases = [data[:n] for n in rng.choice(len(data), 25, replace=False)]
    for _ in range(40):
        flipped = bytearray(data)
        flipped[rng.integers(6, len(data) - 4)] ^= 1 << int(rng.integers(8))
        cases.append(reseal(bytes(flipped[:-4])))
    version, header, tensors = unpack_raw(data)

    def mutated(path, change) -> bytes:
        """The file with ``change(parent, key)`` applied to a copy of the header at ``path``."""
        copied = copy.deepcopy(header)
        parent = copied
        for key in path[:-1]:
            parent = parent[key]
        change(parent, path[-1])
        return pack_raw(copied, tensors, version)

    for path in header_paths(header):
        for bad in ("x", -1, None, [], {}, 10**9):
            cases.append(mutated(path, lambda parent, key, bad=bad: parent.__setitem__(key, bad)))
        if isinstance(path[-1], str):  # and each field left out
            cases.append(mutated(path, lambda parent, key: parent.__delitem__(key)))
    cases.append(data[:4] + bytes([9, 0]) + data[6:])  # a future major version (and a bad checksum)
    return cases


INT_FOR_FLOAT = re.compile(r"must be (3 finite floats|a positive finite float|a float in)")
"""The one check the JS reader cannot make: msgpack's integer and float encodings of a number decode alike in
JavaScript, so a header that stores an integer where the format says float64 reads there as that number."""


@pytest.mark.parametrize("golden", ["v5.1/sheet", "v5.1/torus-open", "v5.0/torus", "v4.0/torus", "v1.0/torus"])
def test_js_reader_refuses_what_python_refuses(golden):
    data = (REPO / "tests" / "golden" / f"{golden}.ksc").read_bytes()
    cases = _mutations(data, seed=len(golden) + int(golden[1]))
    points = np.array([[0.1, -0.2, 0.3], [0.7, 0.0, -0.4]], np.float32)
    results = js_decode(cases, points)
    refused_only_by_js = 0
    for case, result in zip(cases, results, strict=True):
        assert "crash" not in result, result
        try:
            python = verify(case).field(points)
        except KscFormatError as error:
            if not INT_FOR_FLOAT.search(str(error)):
                assert "error" in result, f"Python refuses ({error}) what JS reads"
            continue
        if "error" in result:  # stricter in JS: zstandard streams libzstd tolerates, tensors of shape ()
            refused_only_by_js += 1
            continue
        scale = np.maximum(1.0, np.abs(python))  # a mutated network can give huge values, float32 in Python
        assert (np.abs(np.array(result["values"]) - python) / scale).max() < 1e-4
    assert refused_only_by_js <= 2


def test_js_reader_messages_say_what_is_wrong():
    data = CURRENT.read_bytes()
    results = js_decode([data[:-1], b"PK\x03\x04" + data[4:], data[:4] + bytes([9, 0]) + data[6:], b""])
    errors = [result["error"] for result in results]
    assert "checksum mismatch" in errors[0]
    assert "not a .ksc file" in errors[1]
    assert "format version 9.0 is not supported" in errors[2]
    assert "too short" in errors[3]


def test_camera_is_the_same_in_the_page_and_the_preview():
    source = (WEB / "src" / "camera.js").read_text()
    for name, value in CAMERA.items():
        match = re.search(rf"\b{name}: ([0-9.]+),", source)
        assert match and float(match.group(1)) == value, name


# -- ksc preview --------------------------------------------------------------------------------------------------


def test_preview_silhouette_is_the_decoded_mesh_projection():
    import trimesh

    from ksc.decoding.pipeline import decode

    data = CURRENT.read_bytes()
    picture = preview(data, SIZE)
    assert picture.shape == (SIZE, SIZE, 3) and picture.dtype == np.uint8
    silhouette = np.any(picture != 255, axis=2)
    assert 0.05 < silhouette.mean() < 0.9  # not blank, not all shape
    assert len(np.unique(picture[silhouette].reshape(-1, 3), axis=0)) > 20  # shaded, not flat

    decoded = decode(data, 128)
    mesh = trimesh.Trimesh(decoded.network.transform.to_unit(decoded.vertices), decoded.faces, process=False)
    samples, _ = trimesh.sample.sample_surface(mesh, 400_000, seed=1)
    pixels, _ = project(samples, SIZE)
    pixels = np.floor(pixels).astype(int)
    pixels = pixels[np.all((pixels >= 0) & (pixels < SIZE), axis=1)]
    hit = np.zeros((SIZE, SIZE), bool)
    hit[pixels[:, 1], pixels[:, 0]] = True
    # The surface's points land inside the picture's shape (give or take the pixel at its edge) and cover it.
    from scipy.ndimage import binary_dilation

    assert (hit & binary_dilation(silhouette)).sum() / hit.sum() > 0.999
    assert (binary_dilation(hit) & silhouette).sum() / silhouette.sum() > 0.99


def test_preview_draws_the_key_spheres_inside_the_surface():
    data = CURRENT.read_bytes()
    plain, with_spheres = preview(data, 128), preview(data, 128, spheres=True)
    orange = (with_spheres[..., 0].astype(int) - with_spheres[..., 2]) > 60
    assert orange.sum() > 50 and not ((plain[..., 0].astype(int) - plain[..., 2]) > 60).any()


def test_render_refuses_a_silly_size():
    from ksc.errors import KscInputError

    with pytest.raises(KscInputError, match="size must be"):
        render(np.zeros((3, 3)), np.array([[0, 1, 2]]), np.zeros((3, 3)), size=5)


def test_cli_preview_writes_a_png(tmp_path):
    out = tmp_path / "torus.png"
    result = CliRunner().invoke(main, ["preview", str(CURRENT), str(out), "--size", "64"])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == 64
    assert png_bytes(np.zeros((2, 3, 3), np.uint8))[:8] == data[:8]
    bad = CliRunner().invoke(main, ["preview", str(CURRENT), str(tmp_path / "x.jpg")])
    assert bad.exit_code == 2 and "name it .png" in bad.output
    broken = tmp_path / "broken.ksc"
    broken.write_bytes(CURRENT.read_bytes()[:-3])
    failed = CliRunner().invoke(main, ["preview", str(broken), str(tmp_path / "b.png")])
    assert failed.exit_code == 1 and "checksum mismatch" in failed.output and not (tmp_path / "b.png").exists()


# -- ksc view and the page in Chromium ----------------------------------------------------------------------------


class Viewing:
    """`ksc view FILE --no-open` as a process, stopped with SIGINT as Ctrl-C would."""

    def __init__(self, path: Path):
        from ksc.tools.serve import viewer_files

        try:
            viewer_files()
        except Exception as error:
            pytest.skip(str(error))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ksc.cli", "view", str(path), "--no-open"],
            stdout=subprocess.PIPE,
            text=True,
            # A runner started in the background by a shell without job control ignores SIGINT, and a child
            # inherits that: Python would then install no Ctrl-C handler and stop() could not stop it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        line = self.process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/\S*)", line)
        assert match, line
        self.url = match.group(1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=10)
        finally:
            self.process.kill()


def test_view_serves_the_page_and_the_file_and_stops_on_ctrl_c(tmp_path):
    viewing = Viewing(CURRENT)
    try:
        base = viewing.url.split("?")[0]
        page = urllib.request.urlopen(base, timeout=10).read().decode()
        assert "ksc-viewer.js" in page
        script = urllib.request.urlopen(base + "ksc-viewer.js", timeout=10)
        assert script.headers["Content-Type"].startswith("text/javascript")
        assert urllib.request.urlopen(base + "files/" + CURRENT.name, timeout=10).read() == CURRENT.read_bytes()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(base + "../etc/passwd", timeout=10)
    finally:
        assert viewing.stop() == 0
    missing = CliRunner().invoke(main, ["view", str(tmp_path / "nothing.ksc"), "--no-open"])
    assert missing.exit_code == 1 and "no such file" in missing.output


def browse(url: str, picture: Path, size: int = SIZE, pick: Path | None = None) -> dict:
    """web/test/browser.mjs: the page's final state and a picture of its canvas (``pick``: opened with the picker)."""
    node = _node()
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium for the browser tests")
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        pytest.skip("playwright-core is missing in web/node_modules: run `make setup`")
    environment = {**os.environ, "KSC_PICK": str(pick)} if pick else None
    done = subprocess.run(
        [node, str(WEB / "test" / "browser.mjs"), url, str(picture), str(size)],
        capture_output=True,
        text=True,
        timeout=180,
        env=environment,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _png_silhouette(path: Path) -> np.ndarray:
    """Pixels that are not the white background, from a PNG (Pillow comes with scikit-image)."""
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB"))
    return np.any(pixels < 250, axis=2)


def test_page_renders_what_preview_renders(tmp_path):
    viewing = Viewing(CURRENT)
    try:
        result = browse(viewing.url, tmp_path / "page.png")
    finally:
        viewing.stop()
    assert result["state"] == "refined" and result["error"] is None and not result["messages"], result
    assert result["triangles"] > 1000
    # The status line names the served file and its real size (the buffer handed to the worker is not).
    assert result["status"].startswith(f"{CURRENT.name}: {len(CURRENT.read_bytes()):,} bytes"), result["status"]
    page = _png_silhouette(tmp_path / "page.png")
    expected = np.any(preview(CURRENT.read_bytes(), SIZE) < 250, axis=2)
    iou = (page & expected).sum() / (page | expected).sum()
    assert iou >= 0.9, iou


def test_page_shows_the_error_of_a_truncated_file(tmp_path):
    broken = tmp_path / "truncated.ksc"
    broken.write_bytes(CURRENT.read_bytes()[:2000])
    viewing = Viewing(broken)
    try:
        result = browse(viewing.url, tmp_path / "page.png", 64)
    finally:
        viewing.stop()
    assert result["state"] == "error" and "checksum mismatch" in result["error"], result
    assert not _png_silhouette(tmp_path / "page.png").any()  # no stale or partial shape


def test_page_opens_files_from_its_picker_old_versions_and_refuses_future_ones(tmp_path):
    future = tmp_path / "future.ksc"
    future.write_bytes(reseal(CURRENT.read_bytes()[:4] + bytes([6, 0]) + CURRENT.read_bytes()[6:-4]))
    viewing = Viewing(CURRENT)
    try:
        page = viewing.url.split("?")[0]
        old = browse(page, tmp_path / "old.png", 64, pick=REPO / "tests" / "golden" / "v1.0" / "torus.ksc")
        refused = browse(page, tmp_path / "future.png", 64, pick=future)
    finally:
        viewing.stop()
    assert old["state"] == "refined" and old["triangles"] > 1000, old
    assert refused["state"] == "error" and "format version 6.0 is not supported" in refused["error"], refused
