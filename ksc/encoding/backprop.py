"""The training step written out: forward, backward and optimizer (SOAP) of the torch network without autograd
(:class:`ksc.models.network.KeySphereNet`).

A step of the default network is some thirty small kernels on 2048 x 34
matrices; under autograd and ``torch.optim.Adam`` the bookkeeping between them
cost more than the arithmetic (``research/design/train_step.py``). Here the same
function and the same gradients are computed with preallocated buffers:

* what does not depend on the weights is computed once per training point, not
  once per step: the point, its Fourier features and its normalized sphere
  weights ``w_ij`` (a table of ``N x (3 + 6F + M)`` floats, built in chunks;
  where it would exceed :data:`TABLE_BYTES` it is computed per batch instead,
  with the same row-wise arithmetic, so both give the same bits);
* each SiLU keeps its sigmoid for the backward pass;
* the parameters and their gradients live in two flat vectors, so that the
  optimizer (:class:`Soap`: Adam in rotated bases) is a handful of vector
  operations and a few small products per weight matrix;
* a batch can be cut into slices computed side by side in forked processes
  (``parts``): no torch thread pool, whose per-kernel fork and join cost more
  than these kernels, and waits that sleep in the kernel.

``tests/test_backprop.py`` checks the loss and every gradient against autograd
through :class:`KeySphereNet` for each branch, activation and weighting.
"""

from __future__ import annotations

import functools
import math
import mmap
import multiprocessing
import os
import signal
import sys
import time

import torch

from ksc.encoding.threads import torch_threads
from ksc.models.network import KeySphereNet

TABLE_BYTES = 1 << 30
"""Largest table of per-point constants kept in memory (1M points of the default network take 412 MB)."""
CHUNK = 65536
BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults
SHAMPOO_BETA = 0.95
"""Decay of :class:`Soap`'s averages of ``G G^T`` and ``G^T G`` (the SOAP paper's)."""
SOAP_EVERY = 10
"""Steps between two eigendecompositions of :class:`Soap`'s averages (the SOAP paper's)."""


class Soap:
    """SOAP over one flat parameter vector: Adam in the eigenbases of each weight matrix's Shampoo statistics.

    For every matrix ``G`` (m, n) among the parameters, exponential averages of ``G G^T`` (m, m) and ``G^T G``
    (n, n) are kept, and their eigenvectors ``Q_L``, ``Q_R`` (after the first step, then every
    :data:`SOAP_EVERY` steps; the first step is Adam's); Adam's moments see ``Q_L^T G Q_R`` and its update is
    rotated back. Where a layer's inputs are correlated (Fourier features, neighbouring units) this is Adam
    with the correlations taken out. Vectors (biases) and an optimizer without ``matrices`` get
    torch.optim.Adam's update (no weight decay). Vyas et al., "SOAP: Improving and Stabilizing Shampoo using
    Adam", 2024.

    Matrices of one shape lying at equal spacing (the hidden layers) are rotated and decomposed as one batch:
    a step is a few dozen small kernels whatever the depth.

    Parameters
    ----------
    parameters : (P,) tensor
        The flat parameter vector, updated in place.
    matrices : list of (offset, rows, columns)
        Where each weight matrix lies in ``parameters`` (row-major), in increasing offsets.
    """

    def __init__(self, parameters: torch.Tensor, matrices: list[tuple[int, int, int]] = ()):
        self.parameters = parameters
        buffers = ("gradient", "first", "second", "rotated", "direction")  # rotated: the gradient, then the moment
        for name in buffers:
            setattr(self, name, torch.zeros_like(parameters))
        self.steps = 0
        self.groups = []
        for offset, count, spacing, rows, columns in _batches(matrices):
            shape, strides = (count, rows, columns), (spacing, columns, 1)
            zeros = functools.partial(torch.zeros, device=parameters.device)
            group = {name: torch.as_strided(getattr(self, name), shape, strides, offset) for name in buffers}
            group.update(
                left=zeros(count, rows, rows),
                right=zeros(count, columns, columns),
                q_left=torch.eye(rows, device=parameters.device).repeat(count, 1, 1),
                q_right=torch.eye(columns, device=parameters.device).repeat(count, 1, 1),
                half=zeros(shape),
                whole=zeros(shape),
            )
            self.groups.append(group)

    def step(self, gradient: torch.Tensor, learning_rate: float) -> None:
        self.steps += 1
        beta1, beta2 = BETAS
        self.gradient.copy_(gradient)
        self.first.lerp_(gradient, 1.0 - beta1)
        self._rotate("gradient", back=False)
        self.second.mul_(beta2).addcmul_(self.rotated, self.rotated, value=1.0 - beta2)
        self._rotate("first", back=False)
        denominator = (self.second.sqrt() / math.sqrt(1.0 - beta2**self.steps)).add_(EPS)
        torch.div(self.rotated, denominator, out=self.direction)
        self._rotate("direction", back=True)
        self.parameters.add_(self.direction, alpha=-learning_rate / (1.0 - beta1**self.steps))
        # the bases come from earlier gradients only: in a basis of its own G G^T and G^T G a gradient is
        # diagonal, and Adam would scale its rounding noise off the diagonal up to whole steps
        for group in self.groups:
            g = group["gradient"]
            group["left"].baddbmm_(g, g.transpose(1, 2), beta=SHAMPOO_BETA, alpha=1.0 - SHAMPOO_BETA)
            group["right"].baddbmm_(g.transpose(1, 2), g, beta=SHAMPOO_BETA, alpha=1.0 - SHAMPOO_BETA)
            if self.steps == 1 or self.steps % SOAP_EVERY == 0:
                group["q_left"] = _eigenvectors(group["left"], group["q_left"])
                group["q_right"] = _eigenvectors(group["right"], group["q_right"])

    def _rotate(self, name: str, back: bool) -> None:
        """Every matrix ``X`` of buffer ``name`` as ``Q_L^T X Q_R`` into ``rotated`` (``back``: ``Q_L X Q_R^T``
        into ``direction``, in place); the vectors are copied (forwards) or left (back)."""
        if not back:
            self.rotated.copy_(getattr(self, name))
        for group in self.groups:
            left, right = group["q_left"], group["q_right"]
            left, right = (left, right.transpose(1, 2)) if back else (left.transpose(1, 2), right)
            torch.bmm(left, group[name], out=group["half"])
            torch.bmm(group["half"], right, out=group["whole"])
            group["direction" if back else "rotated"].copy_(group["whole"])


def _eigenvectors(statistics: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Eigenvectors (B, n, n) of the symmetric ``statistics`` (B, n, n), in float64; ``previous`` where that fails.

    A unit whose gradient has vanished leaves averages that decay into float32's subnormal range, on which
    LAPACK's float32 ``syevd`` returns NaN or inaccurate vectors without raising; in float64 these are
    ordinary numbers, at ~1.25x the decomposition's time.
    """
    try:
        vectors = torch.linalg.eigh(statistics.double()).eigenvectors.to(previous.dtype)
    except torch.linalg.LinAlgError:
        return previous
    return vectors if bool(torch.isfinite(vectors).all()) else previous


def _batches(matrices: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int, int]]:
    """``matrices`` (offset, rows, columns) as runs of one shape at equal spacing: (offset, count, spacing, rows, columns)."""
    runs: list[list[int]] = []
    for offset, rows, columns in matrices:
        last = runs[-1] if runs else None
        if last and (last[3], last[4]) == (rows, columns) and (last[1] == 1 or offset - last[0] == last[1] * last[2]):
            last[2] = offset - last[0] if last[1] == 1 else last[2]
            last[1] += 1
        else:
            runs.append([offset, 1, rows * columns, rows, columns])
    return [tuple(run) for run in runs]


class FusedTrainer:
    """Trains ``model``'s parameters on ``points`` (N, 3) and signed distances ``target`` (N,), one batch per :meth:`step`.

    The parameters are copied into one flat vector at construction and back into
    ``model`` by :meth:`write_back`. ``step`` can run the forward and backward
    passes through other weights than the trained ones (``transform``: the
    fake-quantized weights of :mod:`ksc.encoding.quantize`); the gradient then passes
    straight through to the trained weights.

    ``parts`` (CPU only) cuts every batch into that many consecutive slices whose
    gradients are computed separately and summed in order; ``parts - 1`` forked
    helper processes compute all but the first slice while this process computes
    it, so a step uses ``parts`` cores at once (:class:`_Helpers`). The result
    depends on ``parts`` but not on whether the helpers run: where they cannot
    (not Linux) the slices run one after another here, with the same bits. Call :meth:`close` (or use ``with``) to stop
    the helpers. ``table``: the points' :class:`PointTable`, when another trainer of the
    same points and spheres built it already (built here otherwise). ``optimizer``: ``soap`` or ``adam``
    (:class:`Soap` with or without its eigenbases).
    """

    def __init__(
        self,
        model: KeySphereNet,
        points: torch.Tensor,
        target: torch.Tensor,
        batch_size: int,
        parts: int = 1,
        table: PointTable | None = None,
        optimizer: str = "soap",
    ):
        config = model.config
        self.config, self.model, self.target = config, model, target
        self.names = [name for name, _ in model.named_parameters()]
        self.shapes = [tuple(p.shape) for _, p in model.named_parameters()]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.offsets = [sum(self.sizes[:k]) for k in range(len(self.sizes) + 1)]
        self.parameters = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        matrices = [(a, *shape) for shape, a in zip(self.shapes, self.offsets[:-1], strict=True) if len(shape) == 2]
        self.optimizer = Soap(self.parameters, matrices if optimizer == "soap" else [])
        self.weights = self.views(self.parameters)
        self.spheres = model.spheres
        self.fixed_width = _fixed_width(config)
        self.act_silu = config.activation == "silu"
        self.points = points
        self.batch_size = batch_size
        parts = max(1, min(parts, batch_size)) if points.device.type == "cpu" else 1
        self.bounds = [k * batch_size // parts for k in range(parts + 1)]
        self.table = (table or PointTable(model, points)).rows
        # What the helpers read and write lives in memory shared with them: the weights of the passes, the
        # batch's indices, each slice's gradient and loss.
        count = len(self.parameters)
        shared = _SharedTensors(points.device, passes=(count,), index=(batch_size,), gradients=(parts, count), losses=(parts,))
        self.passes, self.index, self.gradients, self.losses = shared.passes, shared.index, shared.gradients, shared.losses
        self.pass_weights = self.views(self.passes)
        self.gradient = self.gradients[0] if parts == 1 else torch.zeros_like(self.parameters)
        self.slices = [_Slice(self, self.bounds[k], self.bounds[k + 1], self.gradients[k]) for k in range(parts)]
        self.helpers = _Helpers.start(self, parts) if parts > 1 else None

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """``flat`` (P,) cut into the model's parameter shapes, by name."""
        return {
            name: flat[a:b].view(shape)
            for name, shape, a, b in zip(self.names, self.shapes, self.offsets[:-1], self.offsets[1:], strict=True)
        }

    def step(self, index: torch.Tensor, learning_rate: float, transform=None) -> torch.Tensor:
        """One Adam step on the points ``index`` (``batch_size``,); returns the batch's mean L1 loss (a 0-d tensor).

        ``transform(parameters) -> weights``, when given, maps the flat parameter vector
        (P,) to the weights the passes use (P,) (fake quantization, :class:`ksc.encoding.quantize.FakeQuantizer`);
        the update goes to the parameters.
        """
        if len(index) != self.batch_size:
            raise ValueError(f"a step takes {self.batch_size} indices, got {len(index)}")
        self.passes.copy_(self.parameters if transform is None else transform(self.parameters))
        self.index.copy_(index)
        if torch.get_num_threads() != 1:  # the helpers run on one thread: so does this process, to the same bits
            with torch_threads(1):
                self._run_slices()
        else:
            self._run_slices()
        if len(self.slices) > 1:
            torch.sum(self.gradients, 0, out=self.gradient)
        self.optimizer.step(self.gradient, learning_rate)
        return self.losses.sum() / self.batch_size

    def _run_slices(self) -> None:
        if self.helpers is not None:
            self.helpers.run(self)
        else:
            for part in self.slices:
                part.run()

    def close(self) -> None:
        """Stop the helper processes (if any); the trainer then computes its slices itself."""
        if self.helpers is not None:
            self.helpers.stop()
            self.helpers = None

    def __enter__(self) -> FusedTrainer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write_back(self) -> None:
        """Copy the trained parameters into the model."""
        with torch.no_grad():
            for (_, parameter), value in zip(self.model.named_parameters(), self.weights.values(), strict=True):
                parameter.copy_(value)


def _fixed_width(config) -> int:
    """Columns of :func:`point_constants` before the sphere weights: the point and its Fourier features."""
    return 3 + 6 * config.frequencies


def point_constants(model: KeySphereNet, points: torch.Tensor) -> torch.Tensor:
    """``[x, f(x), w(x)]`` (n, 3 + 6F + M) of ``points`` (n, 3): the point, its Fourier features, its sphere weights.

    They depend on the key spheres and the network's shape, not on its weights.
    """
    centres, radii = model.spheres[:, :3], model.spheres[:, 3]
    # |x - c| summed per coordinate, not torch.cdist's expansion, so that a row's value does not depend on the
    # rows beside it (the table and the per-batch path give the same bits); a reduction over a last axis of
    # 3 would be several times slower
    d = torch.zeros(len(points), len(centres), device=points.device)
    for axis in range(3):
        d.add_((points[:, axis : axis + 1] - centres[:, axis]).square_())
    affinities = model.affinities_of(d.sqrt_().add_(2.0 * radii))
    weights = affinities / affinities.sum(dim=1, keepdim=True)
    return torch.cat([points, *model.fourier_features(points), weights], dim=1)


class PointTable:
    """:func:`point_constants` of every training point (N, 3 + 6F + M), built once for all the trainers of one encode.

    ``rows`` is None where the table would exceed :data:`TABLE_BYTES`: the trainers then compute a batch's rows
    with the same row-wise arithmetic, to the same bits.
    """

    def __init__(self, model: KeySphereNet, points: torch.Tensor):
        self.rows = None
        if len(points) * 4 * (_fixed_width(model.config) + model.config.spheres) <= TABLE_BYTES:
            self.rows = torch.cat([point_constants(model, points[i : i + CHUNK]) for i in range(0, len(points), CHUNK)])


class _Slice:
    """Rows ``start:stop`` of every batch: their forward and backward pass into ``gradient`` (P,), buffers its own."""

    def __init__(self, trainer: FusedTrainer, start: int, stop: int, gradient: torch.Tensor):
        config, rows = trainer.config, stop - start
        self.trainer, self.start, self.stop, self.part = trainer, start, stop, trainer.bounds.index(start)
        self.grads = trainer.views(gradient)
        # every per-slice array is allocated once: fresh arrays of this size cost more to allocate than to fill
        empty = functools.partial(torch.empty, device=trainer.points.device)
        layers = range(config.layers)
        self.buffers = {
            "rows": empty(rows, trainer.fixed_width + config.spheres),
            "target": empty(rows),
            "y": empty(config.feature_dim, rows),
            "pre": [empty(rows, config.width) for _ in layers],
            "out": [empty(rows, config.width) for _ in layers],
            "slope": [empty(rows, config.width) for _ in layers],
            "prediction": empty(rows, 1),
            "d_h": empty(rows, config.width),
            "d_pre": empty(rows, config.width),
            "d_y": empty(config.feature_dim, rows),
        }

    def run(self) -> None:
        """Gradient of the batch's mean L1 loss over these rows (the other rows' terms left out) into ``gradient``,
        their summed absolute error into the trainer's ``losses[part]``; the weights are the trainer's ``passes``."""
        trainer, grads, b = self.trainer, self.grads, self.buffers
        weights, index = trainer.pass_weights, trainer.index[self.start : self.stop]
        if trainer.table is not None:
            torch.index_select(trainer.table, 0, index, out=b["rows"])
        else:
            b["rows"].copy_(point_constants(trainer.model, torch.index_select(trainer.points, 0, index)))
        fixed, sphere_weights = b["rows"][:, : trainer.fixed_width], b["rows"][:, trainer.fixed_width :]
        config, width = trainer.config, trainer.fixed_width
        if config.features == "direct":
            pre_z = torch.addmm(weights["sphere_layer.bias"], trainer.spheres, weights["sphere_layer.weight"].t())
            z = torch.relu(pre_z)
        else:
            z = weights["latents"]
        # products with 8 or fewer output columns run several times faster transposed (output N = batch)
        y = torch.mm(z.t(), sphere_weights.t(), out=b["y"]).t()

        # forward: each layer keeps its output h and the activation's derivative
        first = weights["hidden.0.weight"]
        inputs = None
        for k in range(config.layers):
            pre, out, slope = b["pre"][k], b["out"][k], b["slope"][k]
            if k:
                torch.addmm(weights[f"hidden.{k}.bias"], inputs, weights[f"hidden.{k}.weight"].t(), out=pre)
            else:
                torch.addmm(weights["hidden.0.bias"], fixed, first[:, :width].t(), out=pre)
                pre.addmm_(y, first[:, width:].t())
            if trainer.act_silu:  # h = x s(x), h' = s + h - h s
                torch.sigmoid(pre, out=slope)
                torch.mul(pre, slope, out=out)
                torch.mul(out, slope, out=pre)  # pre is not needed any more
                slope.add_(out).sub_(pre)
            else:
                torch.clamp_min(pre, 0.0, out=out)
                torch.gt(pre, 0, out=slope)
            inputs = out
        prediction = torch.addmm(weights["output.bias"], inputs, weights["output.weight"].t(), out=b["prediction"])
        residual = prediction.squeeze(1).sub_(torch.index_select(trainer.target, 0, index, out=b["target"]))
        torch.sum(residual.abs(), 0, out=trainer.losses[self.part])

        # backward of the batch's mean L1 loss
        d_out = residual.sign_().div_(trainer.batch_size).unsqueeze(1)  # (rows, 1)
        torch.mm(d_out.t(), inputs, out=grads["output.weight"])
        grads["output.bias"].copy_(d_out.sum(0))
        d_h, d_pre = b["d_h"], b["d_pre"]
        torch.mul(d_out, weights["output.weight"], out=d_h)
        for k in reversed(range(config.layers)):
            torch.mul(d_h, b["slope"][k], out=d_pre)
            torch.sum(d_pre, 0, out=grads[f"hidden.{k}.bias"])
            weight = weights[f"hidden.{k}.weight"]
            if k:
                torch.mm(d_pre.t(), b["out"][k - 1], out=grads[f"hidden.{k}.weight"])
                torch.mm(d_pre, weight, out=d_h)
            else:
                grad = grads["hidden.0.weight"]
                grad[:, :width] = d_pre.t() @ fixed
                grad[:, width:] = (y.t() @ d_pre).t()
                d_y = torch.mm(weight[:, width:].t(), d_pre.t(), out=b["d_y"]).t()
        d_z = (d_y.t() @ sphere_weights).t()  # (M, E)
        if config.features == "direct":
            d_pre_z = d_z * (pre_z > 0)
            torch.mm(d_pre_z.t(), trainer.spheres, out=grads["sphere_layer.weight"])
            torch.sum(d_pre_z, 0, out=grads["sphere_layer.bias"])
        else:
            grads["latents"].copy_(d_z)


class _SharedTensors:
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


class _Helpers:
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
    def start(cls, trainer: FusedTrainer, parts: int) -> _Helpers | None:
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
                    _serve(trainer.slices[part], theirs)
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
            _reap(pid, timeout=5.0)
        self.pipes, self.pids = [], []


def _reap(pid: int, timeout: float) -> None:
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


def _serve(part: _Slice, pipe) -> None:
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
