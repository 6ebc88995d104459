"""The command line through click's CliRunner."""

import json
import math
import re
import sys

import pytest
import trimesh
from click.testing import CliRunner

from ksc.cli.main import main
from ksc.encoding.config import PRESETS
from ksc.format import VERSION
from ksc.models.config import ModelConfig

from .conftest import assert_same_mesh, make_torus

QUICK = [
    "--spheres",
    "32",
    "--layers",
    "4",
    "--width",
    "32",
    "--steps",
    "1000",
    "--samples",
    "50000",
    "--batch-size",
    "2048",
    "--qat-steps",
    "100",
]
_WIDTH_AT = QUICK.index("--width")
QUICK_ANY_WIDTH = QUICK[:_WIDTH_AT] + QUICK[_WIDTH_AT + 2 :]
"""QUICK without --width, for what picks the width itself (a preset, --max-bytes)."""


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    mesh = make_torus(offset=False)
    source = folder / "torus.obj"
    mesh.export(source)
    target = folder / "torus.ksc"
    result = CliRunner().invoke(main, ["encode", str(source), str(target), *QUICK])
    assert result.exit_code == 0, result.output
    return source, target, result.output


def test_encode_reports_size_and_ratio(encoded):
    _, target, output = encoded
    assert f"{target.stat().st_size} bytes" in output
    assert "vs binary PLY" in output and "32 spheres" in output


def test_info_text_and_json(encoded):
    _, target, _ = encoded
    runner = CliRunner()
    text = runner.invoke(main, ["info", str(target)])
    assert text.exit_code == 0 and f"format_version: {VERSION[0]}.{VERSION[1]}" in text.output
    report = json.loads(runner.invoke(main, ["info", "--json", str(target)]).output)
    assert report["spheres"] == 32
    assert report["model"]["layers"] == 4
    assert report["sizes"]["file"] == target.stat().st_size
    first_layer = (3 + 6 * 6 + 8) * 32 + 32  # point, 6 octaves of Fourier features and the 8-D sphere feature in
    assert report["stored_parameters"] == 32 * 4 + 4 * 8 + 8 + first_layer + 3 * (32 * 32 + 32) + 32 + 1
    assert report["model"]["feature_dim"] == 8


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".stl", ".glb"])
def test_decode_writes_the_format_of_the_extension(encoded, tmp_path, suffix):
    _, target, _ = encoded
    out = tmp_path / f"decoded{suffix}"
    result = CliRunner().invoke(main, ["decode", str(target), str(out), "--resolution", "32", "-q"])
    assert result.exit_code == 0, result.output
    assert result.output == ""  # -q prints nothing
    assert out.stat().st_size > 0


def test_dense_flag_gives_the_same_mesh(encoded, tmp_path):
    _, target, _ = encoded
    band, dense = tmp_path / "band.ply", tmp_path / "dense.ply"
    CliRunner().invoke(main, ["decode", str(target), str(band), "--resolution", "40", "--faces", "0"])
    result = CliRunner().invoke(main, ["decode", str(target), str(dense), "--resolution", "40", "--faces", "0", "--dense"])
    assert result.exit_code == 0
    a, b = trimesh.load(band, process=False), trimesh.load(dense, process=False)
    assert_same_mesh(a.vertices, a.faces, b.vertices, b.faces, atol=1e-4)


def test_compare_prints_the_metrics(encoded, tmp_path):
    source, target, _ = encoded
    out = tmp_path / "decoded.ply"
    CliRunner().invoke(main, ["decode", str(target), str(out), "--resolution", "48"])
    result = CliRunner().invoke(main, ["compare", "--json", str(source), str(out)])
    assert result.exit_code == 0
    assert json.loads(result.output)["iou"] > 0.8


def test_verify_reports_each_file_and_fails_if_any_does(encoded, tmp_path):
    _, target, _ = encoded
    result = CliRunner().invoke(main, ["verify", str(target)])
    assert result.exit_code == 0
    assert result.output.startswith(f"{target}: ok (format {VERSION[0]}.{VERSION[1]}, {target.stat().st_size} bytes, 32 spheres")
    broken = tmp_path / "broken.ksc"
    broken.write_bytes(target.read_bytes()[:-1])
    result = CliRunner().invoke(main, ["verify", str(target), str(broken)])
    assert result.exit_code == 1
    assert result.output.count(": ok (") == 1 and f"ksc: error: {broken}: checksum" in result.output


def test_max_bytes_is_never_exceeded(encoded, tmp_path):
    source, target, _ = encoded
    limit = target.stat().st_size - 800  # the 8-bit default does not fit
    out = tmp_path / "capped.ksc"
    result = CliRunner().invoke(main, ["encode", str(source), str(out), *QUICK, "--max-bytes", str(limit)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size <= limit
    report = json.loads(CliRunner().invoke(main, ["info", "--json", str(out)]).output)
    assert report["tensors"]["hidden.0.weight"]["bits"] < 8


def test_max_bytes_without_a_width_narrows_the_network_and_keeps_8_bits(encoded, tmp_path):
    from ksc.encoding.budget import planned_bytes

    source, _, _ = encoded
    limit = math.ceil(planned_bytes(ModelConfig(spheres=32, layers=4, width=20)))
    out = tmp_path / "planned.ksc"
    args = ["encode", str(source), str(out), *QUICK_ANY_WIDTH, "--steps", "200", "--max-bytes", str(limit)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size <= limit
    report = json.loads(CliRunner().invoke(main, ["info", "--json", str(out)]).output)
    assert report["model"]["width"] == 20
    assert report["tensors"]["hidden.0.weight"]["bits"] >= 8


def test_presets_set_the_width_and_order_the_sizes(encoded, tmp_path):
    source, _, _ = encoded
    sizes, widths = {}, {}
    for preset in PRESETS:
        out = tmp_path / f"{preset}.ksc"
        args = ["encode", str(source), str(out), *QUICK_ANY_WIDTH, "--steps", "200", "--qat-steps", "50"]
        args += ["--preset", preset, "-q"]
        assert CliRunner().invoke(main, args).exit_code == 0
        sizes[preset] = out.stat().st_size
        report = json.loads(CliRunner().invoke(main, ["info", "--json", str(out)]).output)
        widths[preset] = report["model"]["width"]
        assert report["tensors"]["hidden.0.weight"]["bits"] == PRESETS[preset].weight_bits
    assert widths == {name: preset.width for name, preset in PRESETS.items()}
    assert sizes["small"] < sizes["default"] < sizes["high"]
    out = tmp_path / "narrow.ksc"
    args = ["encode", str(source), str(out), *QUICK_ANY_WIDTH, "--steps", "200", "--qat-steps", "0"]
    args += ["--preset", "high", "--width", "8"]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert json.loads(CliRunner().invoke(main, ["info", "--json", str(out)]).output)["model"]["width"] == 8


ABSENT = object()


def test_a_research_option_of_the_api_is_recorded(encoded, tmp_path):
    """The distance backend (a Python API option, no longer a CLI one) lands in the encoder map; a default encode
    records the default."""
    import ksc
    from ksc.encoding.config import TrainConfig
    from ksc.models.config import ModelConfig

    source, default_target, _ = encoded
    out = tmp_path / "option.ksc"
    model = ModelConfig(spheres=32, layers=4, width=20)
    out.write_bytes(ksc.encode(source, model=model, train=TrainConfig(steps=200), qat_steps=0, distance="pysdf"))
    runner = CliRunner()
    for path, expected in ((out, "pysdf"), (default_target, "exact")):
        encoder = json.loads(runner.invoke(main, ["info", "--json", str(path)]).output)["encoder"]
        assert encoder.get("distance", ABSENT) == expected


def test_research_knobs_are_not_cli_options(encoded, tmp_path):
    source, _, _ = encoded
    for option in ("--features", "--activation", "--frequencies", "--distance"):
        result = CliRunner().invoke(main, ["encode", str(source), str(tmp_path / "x.ksc"), option, "x"])
        assert result.exit_code == 2 and "No such option" in result.output, option


def corrupt(data: bytes) -> bytes:
    middle = bytearray(data)
    middle[len(middle) // 2] ^= 0x10
    return bytes(middle)


@pytest.mark.parametrize(
    "command,prepare,message",
    [
        (["decode", "{missing}", "{out}"], None, "No such file"),
        (["decode", "{ksc}", "{out}"], lambda d: d[: len(d) // 2], "checksum|truncated"),
        (["decode", "{ksc}", "{out}"], corrupt, "checksum"),
        (["decode", "{ksc}", "{out}"], lambda d: d[:4] + b"\x09" + d[5:], "version 9.0 is not supported"),
        (["decode", "{ksc}", "{out}"], lambda d: b"hello world, not ksc", "bad magic"),
        (["decode", "{ksc}", "{bad_out}"], None, "unsupported output format"),
        (["decode", "{ksc}", "{out}", "--resolution", "5000"], None, "resolution"),
        (["info", "{ksc}"], lambda d: b"", "too short"),
        (["verify", "{ksc}"], corrupt, "input.ksc: checksum"),
        (["verify", "{ksc}"], lambda d: d[:-4] + b"x" + d[-4:], "checksum"),
        (["verify", "{missing}"], None, "absent.ksc: No such file"),
        (["encode", "{missing_obj}", "{out_ksc}"], None, "no such file"),
        (["encode", "{empty_obj}", "{out_ksc}"], None, "no triangles"),
        (["encode", "{nan_obj}", "{out_ksc}"], None, "NaN"),
        (["encode", "{flat_obj}", "{out_ksc}", "--steps", "10", "-q"], None, "training collapsed"),
        (["encode", "{source}", "{out_ksc}", "--bits", "40"], None, "bits"),
        (["encode", "{source}", "{out_ksc}", "--spheres", "0"], None, "spheres"),
        (["encode", "{source}", "{out_ksc}", *QUICK, "--steps", "200", "--max-bytes", "300", "-q"], None, "cannot fit the mesh"),
    ],
)
def test_bad_input_gives_one_line_and_no_output(encoded, tmp_path, command, prepare, message):
    source, target, _ = encoded
    ksc = tmp_path / "input.ksc"
    ksc.write_bytes(prepare(target.read_bytes()) if prepare else target.read_bytes())
    (tmp_path / "empty.obj").write_bytes(b"")
    (tmp_path / "nan.obj").write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    (tmp_path / "flat.obj").write_text("v -1 -1 0\nv 1 -1 0\nv 1 1 0\nv -1 1 0\nf 1 2 3\nf 1 3 4\n")
    names = {
        "missing": tmp_path / "absent.ksc",
        "out": tmp_path / "out.ply",
        "ksc": ksc,
        "bad_out": tmp_path / "out.vrml",
        "missing_obj": tmp_path / "absent.obj",
        "empty_obj": tmp_path / "empty.obj",
        "nan_obj": tmp_path / "nan.obj",
        "flat_obj": tmp_path / "flat.obj",
        "out_ksc": tmp_path / "out.ksc",
        "source": source,
    }
    args = [part.format(**names) for part in command]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ksc: error:"), result.output
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.ply").exists() and not (tmp_path / "out.ksc").exists()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "args,message",
    [
        (["decode", "{ksc}", "{out}", "--resolution", "abc"], "not a valid integer"),
        (["decode", "{ksc}"], "Missing argument"),
        (["encode", "{source}", "{out_ksc}", "--preset", "fancy"], "'fancy' is not one of"),
        (["decode", "{ksc}", "{folder}"], "is a directory"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(encoded, tmp_path, args, message):
    source, target, _ = encoded
    names = {"ksc": target, "out": tmp_path / "out.ply", "source": source, "out_ksc": tmp_path / "o.ksc", "folder": tmp_path}
    result = CliRunner().invoke(main, [a.format(**names) for a in args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ksc: error:") and message in lines[0], result.output


@pytest.mark.parametrize("device,message", [("meta", "not supported"), ("tpu", "unknown device"), ("cpu:x", "unknown device")])
def test_bad_device_is_a_clear_error(encoded, tmp_path, device, message):
    _, target, _ = encoded
    source, _, _ = encoded
    result = CliRunner().invoke(main, ["encode", str(source), str(tmp_path / "o.ksc"), *QUICK, "--device", device])
    assert result.exit_code == 1 and message in result.output


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error(encoded, tmp_path):
    _, target, _ = encoded
    source, _, _ = encoded
    result = CliRunner().invoke(main, ["encode", str(source), str(tmp_path / "o.ksc"), *QUICK, "--device", "cuda"])
    assert result.exit_code == 1 and "CUDA is not available" in result.output


def test_version_and_help():
    runner = CliRunner()
    assert runner.invoke(main, ["--version"]).output.startswith("ksc, version")
    help_text = runner.invoke(main, ["encode", "--help"]).output
    options = ("--spheres", "--layers", "--width", "--steps", "--time-budget", "--seed", "--preset")
    for option in (*options, "--feature-dim", "--max-bytes", "-q"):
        assert option in help_text


@pytest.mark.parametrize("flag,logged", [("-v", True), ("-q", False)])
def test_verbosity_sets_the_library_log_level(encoded, tmp_path, caplog, flag, logged):
    source, _, _ = encoded
    args = ["encode", str(source), str(tmp_path / "v.ksc"), *QUICK, "--steps", "200", flag]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0
    assert ("final L1 loss" in caplog.text) == logged


def test_feature_dim_option_shapes_the_stored_network(encoded, tmp_path):
    source, _, _ = encoded
    target = tmp_path / "paper_features.ksc"
    args = ["encode", str(source), str(target), *QUICK, "--steps", "200", "--feature-dim", "29", "-q"]
    assert CliRunner().invoke(main, args).exit_code == 0
    report = json.loads(CliRunner().invoke(main, ["info", "--json", str(target)]).output)
    assert report["model"]["feature_dim"] == 29
    assert report["stored_parameters"] == 32 * 4 + 4 * 29 + 29 + (3 + 36 + 29) * 32 + 32 + 3 * (32 * 32 + 32) + 32 + 1


def test_a_missing_encode_extra_is_a_clear_error(encoded, tmp_path, monkeypatch):
    """On a decode-only install (no torch, pysdf, libigl), encode and compare say what to install."""
    import builtins

    real_import = builtins.__import__

    def without_igl(name, *args, **kwargs):
        if name == "igl" or name.startswith("igl."):
            raise ModuleNotFoundError(f"No module named {name!r}", name="igl")
        return real_import(name, *args, **kwargs)

    source, target, _ = encoded
    out = tmp_path / "decoded.ply"
    assert CliRunner().invoke(main, ["decode", str(target), str(out), "--resolution", "32", "-q"]).exit_code == 0
    monkeypatch.delitem(sys.modules, "ksc.mesh.metrics", raising=False)
    monkeypatch.delitem(sys.modules, "igl", raising=False)
    monkeypatch.setattr(builtins, "__import__", without_igl)
    result = CliRunner().invoke(main, ["compare", str(source), str(out)])
    assert result.exit_code == 1
    assert "needs igl" in result.output and "ksc[encode]" in result.output


def _job(*args):
    """The EncodeJob that ``ksc encode`` would run with these options (nothing is trained)."""
    import click

    from ksc.cli.options import encode_job, encode_options

    jobs = []

    @click.command()
    @encode_options
    def command(**settings):
        jobs.append(encode_job(settings))

    result = CliRunner().invoke(command, list(args))
    assert result.exit_code == 0, result.output
    return jobs[0]


def test_the_fast_preset_trains_shorter_and_explicit_options_win():
    from ksc.encoding.config import EncodeOptions, preset_options

    assert _job().options == EncodeOptions()
    fast = _job("--preset", "fast").options
    assert fast == preset_options("fast")
    default = EncodeOptions().train
    assert fast.train.steps * fast.train.batch_size < default.steps * default.batch_size / 5  # points trained on
    assert fast.samples < EncodeOptions().samples
    assert fast.model == EncodeOptions().model and fast.weight_bits == 8 and not fast.allocate_steps
    chosen = _job("--preset", "fast", "--steps", "500", "--samples", "60000", "--qat-steps", "0").options
    assert (chosen.train.steps, chosen.samples, chosen.qat_steps, chosen.train.batch_size) == (500, 60000, 0, 1024)
