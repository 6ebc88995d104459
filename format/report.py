"""What ``ksc info`` shows about a container."""

from __future__ import annotations

import math

from .container import Container


def describe_container(container: Container) -> dict:
    """A JSON-ready summary: version, sizes, model, spheres, parameters, source, open surface (holes kept open, a sheet's
    shell half-thickness or None), encoder."""
    meta = container.meta
    tensors = {
        r.name: {"shape": list(r.shape), "codec": r.codec.id, "bits": r.codec.bits, "bytes": len(r.data)}
        for r in container.tensors
    }
    parameters = sum(math.prod(r.shape) for r in container.tensors)
    spheres = next((r.shape[0] for r in container.tensors if r.name == "spheres"), 0)
    return {
        "format_version": "{}.{}".format(*container.version),
        "sizes": {**container.sizes, "tensors": sum(len(r.data) for r in container.tensors)},
        "model": meta.get("model"),
        "spheres": spheres,
        "stored_parameters": parameters,
        "bound": meta.get("bound"),
        "transform": meta.get("transform"),
        "source": meta.get("source"),
        "open_surface": bool(meta.get("holes")) or "sheet" in meta,
        "holes": len(meta.get("holes", [])),
        "sheet": meta.get("sheet"),
        "encoder": meta.get("encoder"),
        "tensors": tensors,
    }
