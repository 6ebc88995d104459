"""The training step written out: forward, backward and Adam of :class:`ksc.model.KeySphereNet` without autograd.

A step of the default network is some thirty small kernels on 2048 x 34
matrices; under autograd and ``torch.optim.Adam`` the bookkeeping between them
cost more than the arithmetic (``benchmarks/train_step.py``). Here the same
function and the same gradients are computed with preallocated buffers:

* what does not depend on the weights is computed once per training point, not
  once per step: the point, its Fourier features and its normalized sphere
  weights ``w_ij`` (a table of ``N x (3 + 6F + M)`` floats, built in chunks;
  where it would exceed :data:`TABLE_BYTES` it is computed per batch instead,
  with the same row-wise arithmetic, so both give the same bits);
* each SiLU keeps its sigmoid for the backward pass;
* the parameters and their gradients live in two flat vectors, so that Adam is
  a handful of vector operations.

``tests/test_backprop.py`` checks the loss and every gradient against autograd
through :class:`KeySphereNet` for each branch, activation and weighting.
"""

from __future__ import annotations

import functools
import math

import torch

from ksc.model import KeySphereNet

TABLE_BYTES = 1 << 30
"""Largest table of per-point constants kept in memory (1M points of the default network take 412 MB)."""
CHUNK = 65536
BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults


class Adam:
    """Adam (``torch.optim.Adam``'s update, without weight decay) over one flat parameter vector."""

    def __init__(self, parameters: torch.Tensor):
        self.parameters = parameters
        self.first = torch.zeros_like(parameters)
        self.second = torch.zeros_like(parameters)
        self.steps = 0

    def step(self, gradient: torch.Tensor, learning_rate: float) -> None:
        self.steps += 1
        beta1, beta2 = BETAS
        self.first.lerp_(gradient, 1.0 - beta1)
        self.second.mul_(beta2).addcmul_(gradient, gradient, value=1.0 - beta2)
        denominator = (self.second.sqrt() / math.sqrt(1.0 - beta2**self.steps)).add_(EPS)
        self.parameters.addcdiv_(self.first, denominator, value=-learning_rate / (1.0 - beta1**self.steps))


class FusedTrainer:
    """Trains ``model``'s parameters on ``points`` (N, 3) and signed distances ``target`` (N,), one batch per :meth:`step`.

    The parameters are copied into one flat vector at construction and back into
    ``model`` by :meth:`write_back`. ``step`` can run the forward and backward
    passes through other weights than the trained ones (``transform``: the
    fake-quantized weights of :mod:`ksc.quantize`); the gradient then passes
    straight through to the trained weights.
    """

    def __init__(self, model: KeySphereNet, points: torch.Tensor, target: torch.Tensor, batch_size: int):
        config = model.config
        self.config, self.model, self.target = config, model, target
        self.names = [name for name, _ in model.named_parameters()]
        self.shapes = [tuple(p.shape) for _, p in model.named_parameters()]
        sizes = [math.prod(shape) for shape in self.shapes]
        self.offsets = [sum(sizes[:k]) for k in range(len(sizes) + 1)]
        self.parameters = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        self.gradient = torch.zeros_like(self.parameters)
        self.optimizer = Adam(self.parameters)
        self.weights, self.grads = self.views(self.parameters), self.views(self.gradient)
        self.spheres = model.spheres
        self.fixed_width = 3 + 6 * config.frequencies
        self.act_silu = config.activation == "silu"
        self.points = points
        row_bytes = 4 * (self.fixed_width + config.spheres)
        self.table = None
        if len(points) * row_bytes <= TABLE_BYTES:
            self.table = torch.cat([self.constants(points[i : i + CHUNK]) for i in range(0, len(points), CHUNK)])
        # every per-batch array is allocated once: fresh arrays of this size cost more to allocate than to fill
        empty = functools.partial(torch.empty, device=points.device)
        layers = range(config.layers)
        self.buffers = {
            "rows": empty(batch_size, self.fixed_width + config.spheres),
            "target": empty(batch_size),
            "y": empty(config.feature_dim, batch_size),
            "pre": [empty(batch_size, config.width) for _ in layers],
            "out": [empty(batch_size, config.width) for _ in layers],
            "slope": [empty(batch_size, config.width) for _ in layers],
            "prediction": empty(batch_size, 1),
            "d_h": empty(batch_size, config.width),
            "d_pre": empty(batch_size, config.width),
            "d_y": empty(config.feature_dim, batch_size),
        }

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """``flat`` (P,) cut into the model's parameter shapes, by name."""
        return {
            name: flat[a:b].view(shape)
            for name, shape, a, b in zip(self.names, self.shapes, self.offsets[:-1], self.offsets[1:], strict=True)
        }

    def constants(self, points: torch.Tensor) -> torch.Tensor:
        """``[x, f(x), w(x)]`` (n, 3 + 6F + M) of ``points`` (n, 3): the point, its Fourier features, its sphere weights."""
        centres, radii = self.spheres[:, :3], self.spheres[:, 3]
        # |x - c| summed per coordinate, not torch.cdist's expansion, so that a row's value does not depend on the
        # rows beside it (the table and the per-batch path give the same bits); a reduction over a last axis of
        # 3 would be several times slower
        d = torch.zeros(len(points), len(centres), device=points.device)
        for axis in range(3):
            d.add_((points[:, axis : axis + 1] - centres[:, axis]).square_())
        affinities = self.model.affinities_of(d.sqrt_().add_(2.0 * radii))
        weights = affinities / affinities.sum(dim=1, keepdim=True)
        return torch.cat([points, *self.model.fourier_features(points), weights], dim=1)

    def step(self, index: torch.Tensor, learning_rate: float, transform=None) -> torch.Tensor:
        """One Adam step on the points ``index`` (``batch_size``,); returns the batch's mean L1 loss (a 0-d tensor).

        ``transform(name, tensor) -> tensor``, when given, maps each parameter to the
        weights the passes use (fake quantization); the update goes to the parameters.
        """
        weights, grads, b = self.weights, self.grads, self.buffers
        if transform is not None:
            weights = {name: transform(name, value) for name, value in weights.items()}
        if self.table is not None:
            torch.index_select(self.table, 0, index, out=b["rows"])
        else:
            b["rows"].copy_(self.constants(torch.index_select(self.points, 0, index)))
        fixed, sphere_weights = b["rows"][:, : self.fixed_width], b["rows"][:, self.fixed_width :]
        config, width = self.config, self.fixed_width
        if config.features == "direct":
            pre_z = torch.addmm(weights["sphere_layer.bias"], self.spheres, weights["sphere_layer.weight"].t())
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
            if self.act_silu:  # h = x s(x), h' = s + h - h s
                torch.sigmoid(pre, out=slope)
                torch.mul(pre, slope, out=out)
                torch.mul(out, slope, out=pre)  # pre is not needed any more
                slope.add_(out).sub_(pre)
            else:
                torch.clamp_min(pre, 0.0, out=out)
                torch.gt(pre, 0, out=slope)
            inputs = out
        prediction = torch.addmm(weights["output.bias"], inputs, weights["output.weight"].t(), out=b["prediction"])
        residual = prediction.squeeze(1).sub_(torch.index_select(self.target, 0, index, out=b["target"]))
        loss = residual.abs().mean()

        # backward of the mean L1 loss
        d_out = residual.sign_().div_(len(index)).unsqueeze(1)  # (B, 1)
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
            torch.mm(d_pre_z.t(), self.spheres, out=grads["sphere_layer.weight"])
            torch.sum(d_pre_z, 0, out=grads["sphere_layer.bias"])
        else:
            grads["latents"].copy_(d_z)
        self.optimizer.step(self.gradient, learning_rate)
        return loss

    def write_back(self) -> None:
        """Copy the trained parameters into the model."""
        with torch.no_grad():
            for (_, parameter), value in zip(self.model.named_parameters(), self.weights.values(), strict=True):
                parameter.copy_(value)
