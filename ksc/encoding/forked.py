"""The processes that compute a training step's slices side by side (``parts``): forked copies of the trainer that
wait on a pipe, and the shared memory they read the weights from and write their gradients into."""

from __future__ import annotations

import math
import mmap
import multiprocessing
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ksc.encoding.backprop import FusedTrainer, _Slice


class SharedTensors:
    """Named float32/int64 tensors of the given shapes; on the CPU in one anonymous shared mapping, which
    processes forked afterwards see and write (no file, no /dev/shm)."""

    def __init__(self, device: torch.device, **shapes: tuple[int, ...]):
        dtypes = {name: torch.int64 if name == "index" else torch.float32 for name in shapes}
        if device.type != "cpu":
            for name, shape in shapes.items():
                setattr(self, name, torch.zeros(shape, dtype=dtypes[name], device=device))
            return
        sizes = {name: math.prod(shape) * dtypes[name].itemsize for name, shape in shapes.items()}
        self.memory = mmap.mmap(-1, sum(-(-size // 8) * 8 for size in sizes.values()))  # MAP_SHARED | MAP_ANONYMOUS
        offset = 0
        for name, shape in shapes.items():
            count = math.prod(shape)
            view = torch.frombuffer(self.memory, dtype=dtypes[name], count=count, offset=offset)
            setattr(self, name, view.view(shape))
            offset += -(-sizes[name] // 8) * 8


class SliceHelpers:
    """Forked processes that compute slices ``1 ..`` of every step while the trainer computes slice 0.

    A helper is a copy of the trainer (the point table shared copy-on-write, never written) that waits on a pipe
    for each step, runs its slice on the shared weights and indices, writes its gradient and loss into shared
    memory and answers on the pipe. Waits block in the kernel, so a helper takes no CPU between steps and a
    busy machine is not spun on. A helper ends when told to, or when the trainer's process goes (its pipe
    closes); it ignores Ctrl-C, which is the trainer's to handle. Helpers are forked with ``os.fork``, not
    ``multiprocessing.Process``, so that a daemonic process (a Dask worker) can have them too.
    """

    def __init__(self, pids: list[int], pipes: list):
        self.pids, self.pipes = pids, pipes

    @classmethod
    def start(cls, trainer: FusedTrainer, parts: int) -> SliceHelpers | None:
        """Helpers for slices 1 .. ``parts - 1``; None where this process cannot fork them (then the trainer runs
        every slice itself, to the same bits)."""
        if not sys.platform.startswith("linux"):
            return None
        pids, pipes = [], []
        for part in range(1, parts):
            mine, theirs = multiprocessing.Pipe()
            pid = os.fork()
            if pid == 0:  # the helper: never returns into the trainer's code
                status = 1
                try:
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                    for pipe in [*pipes, mine]:  # the trainer's ends: with them closed, its exit reads as EOF
                        pipe.close()
                    serve(trainer.slices[part], theirs)
                    status = 0
                finally:
                    os._exit(status)
            theirs.close()
            pids.append(pid)
            pipes.append(mine)
        return cls(pids, pipes)

    def run(self, trainer: FusedTrainer) -> None:
        """One step: every helper's slice, with slice 0 computed here meanwhile."""
        for pipe in self.pipes:
            pipe.send_bytes(b"s")
        trainer.slices[0].run()
        for pipe in self.pipes:
            try:
                answer = pipe.recv_bytes()
            except (EOFError, OSError):
                answer = b"ethe process ended"
            if answer != b"d":
                self.stop()
                raise RuntimeError(f"a training helper failed: {answer[1:].decode(errors='replace')}")

    def stop(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send_bytes(b"q")
            except OSError:
                pass  # it has gone already
            pipe.close()
        for pid in self.pids:
            reap(pid, timeout=5.0)
        self.pipes, self.pids = [], []


def reap(pid: int, timeout: float) -> None:
    """Wait for the child ``pid`` to end, killing it after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # reaped already
        if done:
            return
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        time.sleep(0.001)


def serve(part: _Slice, pipe) -> None:
    """A helper's loop: a slice for every ``s`` on the pipe until ``q`` or the other end closes."""
    torch.set_num_threads(1)
    while True:
        try:
            command = pipe.recv_bytes()
        except (EOFError, OSError):
            return
        if command != b"s":
            return
        try:
            part.run()
        except Exception as error:  # reported to the trainer, which raises it
            pipe.send_bytes(b"e" + f"{type(error).__name__}: {error}".encode())
            return
        pipe.send_bytes(b"d")
