"""The decoder's network in numpy: signed distance and its gradient, without torch.

:class:`SphereField` computes what :class:`ksc.models.network.KeySphereNet` computes
(paper eq. 3 sphere weights, the sphere-feature branch, Fourier features, the
MLP) from the tensors of a ``.ksc`` file, in float32 and in chunks that stay
in cache. A decode evaluates a network of a few thousand weights on a few
hundred thousand points: importing a deep-learning framework would cost more
than the work (torch takes ~2 s to import, the whole decode ~0.5 s).

Two extra paths make extraction cheap:

* :meth:`SphereField.at_nodes` evaluates grid nodes. The first hidden layer
  reads ``[x, f(x), y]`` and its part over ``[x, f(x)]`` is a sum of one
  term per axis, so it is tabulated once per axis (R rows of Q values) and
  gathered, instead of 36 sines and cosines and a 39 x Q product per point.
* :meth:`SphereField.values_and_gradients` backpropagates by hand, for the
  vertex normals and for moving vertices onto the zero level.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ksc.errors import KscFormatError
from ksc.format.layout import tensor_layout
from ksc.models.config import ModelConfig

CHUNK = 4096
"""Points per pass: a (4096 x 64) float32 distance matrix is 1 MiB, inside the L2 cache."""
PARALLEL_CHUNKS = 4
"""Fewer chunks than this run on the calling thread; more are shared among one thread per core (numpy
releases the GIL in its loops and matrix products); run under :func:`one_blas_thread`."""
HALF, ONE = np.float32(0.5), np.float32(1.0)
MIN_DISTANCE = 1e-3  # the floor of the nearer-is-heavier weightings' d (SPEC.md, `weighting`), as their encoder had it


class SphereField:
    """Signed distance (positive inside) of a key-sphere network, in the normalized frame.

    Parameters
    ----------
    config : ModelConfig
        The network's shape, from the file's header.
    tensors : dict of str to ndarray
        Every stored tensor by name (``ksc.format.layout.tensor_layout``), spheres included.
    """

    def __init__(self, config: ModelConfig, tensors: dict[str, np.ndarray]):
        expected = dict(tensor_layout(config))
        for name, shape in expected.items():
            if name not in tensors or tuple(np.shape(tensors[name])) != shape:
                found = tuple(np.shape(tensors[name])) if name in tensors else "missing"
                raise KscFormatError(f"tensor {name!r} has shape {found}, the model in the header needs {shape}")
        self.config = config
        f32 = {name: np.ascontiguousarray(tensors[name], dtype=np.float32) for name in expected}
        spheres = f32["spheres"]
        self.centres, self.radii = np.ascontiguousarray(spheres[:, :3]), spheres[:, 3].copy()
        centre_norms = (self.centres.astype(np.float64) ** 2).sum(1).astype(np.float32)
        if config.features == "direct":
            z = spheres @ f32["sphere_layer.weight"].T + f32["sphere_layer.bias"]
            self.sphere_features = np.maximum(z, 0.0)
        else:
            self.sphere_features = f32["latents"]
        self.weights = [f32[f"hidden.{k}.weight"] for k in range(config.layers)]
        self.biases = [f32[f"hidden.{k}.bias"] for k in range(config.layers)]
        self.output_weight, self.output_bias = f32["output.weight"][0], float(f32["output.bias"][0])
        self.position_columns = 3 + 6 * config.frequencies  # [x, f(x)] in the first layer's input
        self.frequency_scales = [np.float32(math.pi * 2.0**k) for k in range(config.frequencies)]
        first = self.weights[0]
        # The sphere feature enters the first layer only through this product: y @ W^T = (A @ (Z @ W^T)) / S.
        self.feature_weights = np.ascontiguousarray(self.sphere_features @ first[:, self.position_columns :].T)
        self.silu = config.activation == "silu"
        # [p, |p|^2, 1] @ distance_matrix = |p - c|^2 (see _distances); 2r enters the paper weighting's sums as constants.
        self.distance_matrix = np.concatenate(
            [-2.0 * self.centres.T, np.ones((1, len(self.radii)), np.float32), centre_norms[None]], axis=0
        ).astype(np.float32)
        self.radius_row = (2.0 * self.radii) @ self.feature_weights
        self.radius_sum = np.float32(2.0 * self.radii.astype(np.float64).sum())
        self.ones = np.ones(len(self.radii), np.float32)
        self._scratch = threading.local()

    # -- values ---------------------------------------------------------------------------------------------------

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (N,) float32 at ``points`` (N, 3)."""
        points = np.ascontiguousarray(points, dtype=np.float32)
        out = np.empty(len(points), np.float32)

        def chunk(start: int) -> None:
            p = points[start : start + CHUNK]
            out[start : start + len(p)] = self._run(p, self._position_term(p))

        _for_each_chunk(chunk, len(points))
        return out

    def at_nodes(self, axis: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """Signed distance (N,) float32 at grid nodes: ``nodes`` (N, 3) int indices into ``axis`` (R,) coordinates."""
        axis = np.asarray(axis, dtype=np.float32)
        tables = self._axis_tables(axis)
        nodes = np.asarray(nodes)
        out = np.empty(len(nodes), np.float32)

        def chunk(start: int) -> None:
            n = nodes[start : start + CHUNK]
            position = np.take(tables[0], n[:, 0], axis=0)  # take: 38 against 88 us for fancy indexing
            position += np.take(tables[1], n[:, 1], axis=0)
            position += np.take(tables[2], n[:, 2], axis=0)
            out[start : start + len(n)] = self._run(axis[n], position)

        _for_each_chunk(chunk, len(nodes))
        return out

    def _axis_tables(self, axis: np.ndarray) -> list[np.ndarray]:
        """Per axis a (R, Q) table: the first layer's term from that coordinate and its Fourier features."""
        cache = getattr(self, "_tables", None)
        if cache is not None and np.array_equal(cache[0], axis):
            return cache[1]
        first = self.weights[0]
        tables = []
        for dim in range(3):
            columns = [dim] + [3 + 6 * k + s * 3 + dim for k in range(self.config.frequencies) for s in (0, 1)]
            features = np.stack([axis, *self._fourier(axis)], axis=1)
            tables.append(np.ascontiguousarray(features @ first[:, columns].T))
        tables[0] += self.biases[0]
        self._tables = (axis.copy(), tables)
        return tables

    def _position_term(self, p: np.ndarray) -> np.ndarray:
        """The first layer's term from ``[x, f(x)]`` plus its bias, (n, Q)."""
        return np.concatenate([p, *self._fourier(p)], axis=1) @ self.weights[0][:, : self.position_columns].T + self.biases[0]

    def _fourier(self, x: np.ndarray) -> list[np.ndarray]:
        """``sin`` and ``cos`` of ``2**k * pi * x`` for k < frequencies, in the network's order, each shaped like ``x``."""
        return [f for scale in self.frequency_scales for f in (np.sin(scale * x), np.cos(scale * x))]

    def _distances(self, p: np.ndarray) -> np.ndarray:
        """``|p - c_j|`` (n, M) in this thread's scratch buffer, valid until the thread's next call.

        ``[p, |p|^2, 1] @ distance_matrix`` is ``|p|^2 + |c|^2 - 2 p.c`` in one product,
        the expansion torch.cdist uses for more than 25 points.
        """
        augmented, distance, _ = self._buffers(len(p))
        augmented[:, :3] = p
        np.einsum("ij,ij->i", p, p, out=augmented[:, 3])
        np.matmul(augmented, self.distance_matrix, out=distance)
        np.maximum(distance, 0.0, out=distance)
        return np.sqrt(distance, out=distance)

    def _affinities(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distances (n, M) from ``p`` to the sphere centres and the spheres' unnormalized weights (n, M)."""
        distance = self._distances(p)
        affinity = distance + 2.0 * self.radii
        if self.config.weighting != "paper":
            power = -1.0 if self.config.weighting == "inverse" else -2.0
            affinity = np.power(np.maximum(affinity, MIN_DISTANCE), np.float32(power))
        return distance, affinity

    def _first_layer(self, p: np.ndarray, position: np.ndarray) -> np.ndarray:
        """The first hidden layer's pre-activation (n, Q); ``position`` (n, Q) is its term from ``[x, f(x)]``."""
        if self.config.weighting == "paper":  # the affinities' 2r part is constant: fold it into the sums
            distance = self._distances(p)
            total = (distance @ self.ones)[:, None]  # a product: 20 against 120 us for sum(1) on 4096 x 64
            total += self.radius_sum
            z = distance @ self.feature_weights
            z += self.radius_row
        else:
            _, affinity = self._affinities(p)
            total = (affinity @ self.ones)[:, None]
            z = affinity @ self.feature_weights
        z /= total
        z += position
        return z

    def _buffers(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This thread's scratch arrays for ``n`` points: [p, |p|^2, 1] (n, 5), distances (n, M) and SiLU's
        product (n, Q)."""
        scratch = self._scratch
        if getattr(scratch, "rows", 0) < n:
            scratch.augmented = np.ones((n, 5), np.float32)
            scratch.distance = np.empty((n, len(self.radii)), np.float32)
            scratch.product = np.empty((n, self.config.width), np.float32)
            scratch.rows = n
        return scratch.augmented[:n], scratch.distance[:n], scratch.product[:n]

    def _run(self, p: np.ndarray, position: np.ndarray) -> np.ndarray:
        h = self._activate(self._first_layer(p, position))
        for weight, bias in zip(self.weights[1:], self.biases[1:], strict=True):
            z = h @ weight.T
            z += bias
            h = self._activate(z)
        return h @ self.output_weight + np.float32(self.output_bias)

    def _activate(self, z: np.ndarray) -> np.ndarray:
        """SiLU or ReLU of ``z``, computed in place.

        SiLU is ``u + u tanh(u)`` with ``u = z / 2``, i.e. ``z * sigmoid(z)``. ``exp(-z)`` would leave numpy's
        vector loop for a slow path wherever it underflows (z > ~87, which hidden layers reach): a chunk of
        4096 nodes took 3.6 ms with it and 3.0 ms with tanh, which saturates without leaving the loop.
        """
        if not self.silu:
            return np.maximum(z, 0.0, out=z)
        z *= HALF  # u = z / 2; SiLU(z) = u + u tanh(u)
        product = np.tanh(z, out=self._buffers(len(z))[2])
        product *= z
        z += product
        return z

    # -- gradients ------------------------------------------------------------------------------------------------

    def values_and_gradients(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signed distance (N,) float32 and its gradient (N, 3) float32 at ``points`` (N, 3), by backpropagation."""
        points = np.ascontiguousarray(points, dtype=np.float32)
        values = np.empty(len(points), np.float32)
        gradients = np.empty((len(points), 3), np.float32)

        def chunk(start: int) -> None:
            p = points[start : start + CHUNK]
            values[start : start + len(p)], gradients[start : start + len(p)] = self._value_and_gradient(p)

        _for_each_chunk(chunk, len(points))
        return values, gradients

    def _value_and_gradient(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        config = self.config
        distance, affinity = self._affinities(p)
        total = affinity.sum(1, keepdims=True)
        feature = (affinity @ self.sphere_features) / total  # y (n, E)
        fourier = self._fourier(p)
        h = np.concatenate([p, *fourier, feature], axis=1)
        pre = []
        for weight, bias in zip(self.weights, self.biases, strict=True):
            z = h @ weight.T + bias
            pre.append(z)
            h = self._activate(z.copy())
        value = h @ self.output_weight + np.float32(self.output_bias)

        grad = np.broadcast_to(self.output_weight, h.shape)
        for weight, z in zip(reversed(self.weights), reversed(pre), strict=True):
            grad = (grad * self._activation_slope(z)) @ weight
        gradient = grad[:, :3].copy()
        for k, scale in enumerate(self.frequency_scales):
            g_sin, g_cos = grad[:, 3 + 6 * k : 6 + 6 * k], grad[:, 6 + 6 * k : 9 + 6 * k]
            gradient += scale * (g_sin * fourier[2 * k + 1] - g_cos * fourier[2 * k])
        g_feature = grad[:, self.position_columns :]
        # y = (A Z) / S: dy/dA_j = (Z_j - y) / S; A_j depends on p through |p - c_j|.
        g_affinity = (g_feature @ self.sphere_features.T - (g_feature * feature).sum(1, keepdims=True)) / total
        if config.weighting == "paper":
            slope = g_affinity
        else:
            power = -1.0 if config.weighting == "inverse" else -2.0
            base = distance + 2.0 * self.radii
            slope = g_affinity * np.where(base > MIN_DISTANCE, power * affinity / np.maximum(base, MIN_DISTANCE), 0.0)
        slope = slope / np.maximum(distance, 1e-12)
        gradient += p * slope.sum(1, keepdims=True) - slope @ self.centres
        return value, gradient

    def _activation_slope(self, z: np.ndarray) -> np.ndarray:
        if not self.silu:
            return (z > 0).astype(np.float32)
        sigmoid = np.tanh(z * HALF)  # the tanh form of _activate: no subnormal slow path
        sigmoid += ONE
        sigmoid *= HALF
        return sigmoid * (1.0 + z * (1.0 - sigmoid))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not every platform has it
        return os.cpu_count() or 1


_POOL: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    """A forked child has the pool object but none of its threads: it must start its own."""
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _for_each_chunk(function, count: int) -> None:
    """Call ``function(start)`` for every chunk start in [0, count); chunks write disjoint slices, so order is free."""
    starts = range(0, count, CHUNK)
    if len(starts) < PARALLEL_CHUNKS or _cores() < 2:
        for start in starts:
            function(start)
        return
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(_cores(), thread_name_prefix="ksc-field")
    for future in [_POOL.submit(function, start) for start in starts]:
        future.result()


def one_blas_thread():
    """A context in which BLAS runs on the calling thread only: the chunks' threads share the cores instead
    (a multi-threaded BLAS under them spins against its own peers on a small product)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
