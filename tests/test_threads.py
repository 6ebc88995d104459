"""The OpenMP spin setting: set by entry points before torch loads, never over the user's own."""

import os
import subprocess
import sys

from ksc.threads import SPIN_COUNT, WAIT_SETTINGS, keep_openmp_workers_spinning

_REPORT = "import os, sys\n{setup}\nprint(os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules)"


def _child(setup: str, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in WAIT_SETTINGS}
    done = subprocess.run(
        [sys.executable, "-c", _REPORT.format(setup=setup)], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_a_fresh_process_gets_the_spin_count():
    assert _child("from ksc.threads import keep_openmp_workers_spinning as k; assert k()") == f"{SPIN_COUNT} False"


def test_the_users_own_settings_win():
    setup = "from ksc.threads import keep_openmp_workers_spinning as k; assert k()"
    assert _child(setup, GOMP_SPINCOUNT="5000") == "5000 False"
    assert _child(setup, OMP_WAIT_POLICY="PASSIVE") == "None False"


def test_too_late_once_torch_is_loaded():
    assert _child("import torch; from ksc.threads import keep_openmp_workers_spinning as k; assert not k()") == "None True"


def test_the_cli_sets_it_before_a_command_imports_torch(tmp_path):
    missing = tmp_path / "missing.ksc"
    setup = (
        "import ksc.cli.main as m\n"
        "try:\n"
        f"    m.main(['info', {str(missing)!r}], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass"
    )
    assert _child(setup) == f"{SPIN_COUNT} False"


def test_this_process_is_left_alone():
    # pytest's process has loaded torch already: nothing to do, nothing changed.
    before = os.environ.get("GOMP_SPINCOUNT")
    import torch  # noqa: F401

    assert not keep_openmp_workers_spinning()
    assert os.environ.get("GOMP_SPINCOUNT") == before
