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
  optimizer (:class:`ksc.encoding.soap.Soap`: Adam in rotated bases) is a handful of vector
  operations and a few small products per weight matrix;
* a batch can be cut into slices computed side by side in forked processes
  (``parts``): no torch thread pool, whose per-kernel fork and join cost more
  than these kernels, and waits that sleep in the kernel.

``tests/test_backprop.py`` checks the loss and every gradient against autograd
through :class:`KeySphereNet` for each branch and activation.
"""

from __future__ import annotations

import functools
import math

import torch

from ksc.encoding.forked import SharedTensors, SliceHelpers
from ksc.encoding.soap import Soap
from ksc.encoding.threads import torch_threads
from ksc.models.network import KeySphereNet

TABLE_BYTES = 1 << 30
"""Largest table of per-point constants kept in memory (1M points of the default network take 412 MB)."""
CHUNK = 65536  # points per chunk while the table of per-point constants is built, to bound memory


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
    it, so a step uses ``parts`` cores at once (:class:`ksc.encoding.forked.SliceHelpers`). The result
    depends on ``parts`` but not on whether the helpers run: where they cannot
    (not Linux) the slices run one after another here, with the same bits. Call :meth:`close` (or use ``with``) to stop
    the helpers. ``table``: the points' :class:`PointTable`, when another trainer of the
    same points and spheres built it already (built here otherwise). ``optimizer``: ``soap`` or ``adam``
    (:class:`ksc.encoding.soap.Soap` with or without its eigenbases).
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
        shared = SharedTensors(points.device, passes=(count,), index=(batch_size,), gradients=(parts, count), losses=(parts,))
        self.passes, self.index, self.gradients, self.losses = shared.passes, shared.index, shared.gradients, shared.losses
        self.pass_weights = self.views(self.passes)
        self.gradient = self.gradients[0] if parts == 1 else torch.zeros_like(self.parameters)
        self.slices = [_Slice(self, self.bounds[k], self.bounds[k + 1], self.gradients[k]) for k in range(parts)]
        self.helpers = SliceHelpers.start(self, parts) if parts > 1 else None

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
