"""The OpenMP spin setting: set by entry points before torch loads, never over the user's own."""

import os
import subprocess
import sys
import time

import pytest

from ksc.threads import SPIN_COUNT, WAIT_SETTINGS, keep_openmp_workers_spinning

_REPORT = "import os, sys\n{setup}\nprint(os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules)"
_POLICY = (
    "import os\nimport ksc.threads as t\n{patch}\nassert t.keep_openmp_workers_spinning(check_load=True)\n"
    "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
)


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


def test_cpu_load_is_a_share_of_the_cores_or_none():
    import ksc.threads

    load = ksc.threads.cpu_load(0.05)
    if load is None:
        assert not os.path.exists("/proc/stat")
    else:
        assert 0.0 <= load <= len(os.sched_getaffinity(0)) + 1e-9


def _policy(patch: str = "", **env) -> str:
    """``GOMP_SPINCOUNT OMP_WAIT_POLICY`` as a fresh process that is about to train leaves them."""
    clean = {k: v for k, v in os.environ.items() if k not in WAIT_SETTINGS}
    command = [sys.executable, "-c", _POLICY.format(patch=patch)]
    return subprocess.run(command, env={**clean, **env}, capture_output=True, text=True, check=True).stdout.strip()


def test_a_busy_machine_gets_passive_waiting():
    import ksc.threads

    if ksc.threads.cpu_load(0.01) is None:
        pytest.skip("no /proc/stat: the load is not measured here")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # a whole core of other work
        assert _policy() == "None PASSIVE"
    finally:
        busy.kill()
        busy.wait()


def test_the_wait_follows_the_measured_load_unless_the_user_chose():
    assert _policy("t.cpu_load = lambda: 0.1") == f"{SPIN_COUNT} None"
    assert _policy("t.cpu_load = lambda: 1.0") == "None PASSIVE"
    assert _policy("t.cpu_load = lambda: None") == f"{SPIN_COUNT} None"  # not measurable: as on an idle machine
    assert _policy("t.cpu_load = lambda: 1 / 0", GOMP_SPINCOUNT="5000") == "5000 None"  # never measured then
