"""The package's layering, read from the source (every import, at module level or inside a function):
decoding, the container and the numpy runtime never reach torch or the encoder; nothing below the tools reaches
them; tests reach neither benchmarks nor research. A second check imports the decoding side in a fresh process
and finds none of the encode extras (torch, libigl, pysdf, dask) loaded, which also covers imports the source
hides and chains through modules.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCES = {"ksc": REPO / "ksc", "ksc.format": REPO / "format", "ksc.cli": REPO / "cli"}
"""Installed package -> folder (format/ and cli/ install inside ksc)."""

FORBIDDEN = {
    # module prefix: what it must never import (prefixes)
    "ksc.format": ("torch", "ksc.encoding", "ksc.decoding", "ksc.mesh", "ksc.tools", "ksc.cli", "ksc.models.network"),
    "ksc.models.config": ("torch", "ksc.encoding", "ksc.decoding", "ksc.tools", "ksc.cli", "ksc.models.network"),
    "ksc.models.runtime": ("torch", "ksc.encoding", "ksc.decoding", "ksc.tools", "ksc.cli", "ksc.models.network"),
    "ksc.models.network": ("ksc.encoding", "ksc.tools", "ksc.cli"),
    "ksc.decoding": ("torch", "ksc.encoding", "ksc.tools", "ksc.cli", "ksc.models.network"),
    "ksc.mesh": ("torch", "ksc.encoding", "ksc.decoding", "ksc.tools", "ksc.cli", "ksc.models"),
    "ksc.encoding": ("ksc.tools", "ksc.cli"),
    "ksc.tools": ("ksc.cli",),
    "ksc.errors": ("ksc.",),
    "ksc.timing": ("ksc.",),
}
EVERYWHERE = ("benchmarks", "research")


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            if "viewer" in path.parts:
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """Every module ``path`` (the module ``name``) imports, relative imports resolved."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from ksc import batch` imports a module
    return found


def _reaches(module: str, prefixes: tuple[str, ...]) -> bool:
    """Whether ``module`` is one of ``prefixes`` or inside one (a prefix ending in "." matches only inside)."""
    for prefix in prefixes:
        if prefix.endswith("."):
            if module.startswith(prefix):
                return True
        elif module == prefix or module.startswith(prefix + "."):
            return True
    return False


MODULES = _modules()


def test_every_module_is_found():
    assert {"ksc.decoding.pipeline", "ksc.encoding.pipeline", "ksc.models.runtime", "ksc.format.container"} <= set(MODULES)


def breaches(name: str, path: Path) -> list[str]:
    """The imports of module ``name`` (at ``path``) that its layer forbids."""
    rules = [forbidden for prefix, forbidden in FORBIDDEN.items() if name == prefix or name.startswith(prefix + ".")]
    imported = imports_of(name, path)
    broken = {module for module in imported for forbidden in rules if _reaches(module, forbidden)}
    return sorted(broken | {module for module in imported if _reaches(module, EVERYWHERE)})


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_keeps_to_its_layer(name):
    assert not breaches(name, MODULES[name])


def test_the_rules_catch_a_breach(tmp_path):
    """The checker itself: imports hidden in a function, relative or absolute, are caught."""
    module = tmp_path / "bad.py"
    lines = ["import numpy", "def f():", "    import torch.nn"]
    lines += ["    from ..encoding import pipeline", "    from ksc import tools"]
    module.write_text("\n".join(lines) + "\n")
    assert breaches("ksc.decoding.bad", module) == ["ksc.encoding", "ksc.encoding.pipeline", "ksc.tools", "torch.nn"]
    assert breaches("ksc.encoding.bad", module) == ["ksc.tools"]


def test_tests_never_import_benchmarks_or_research():
    for path in (REPO / "tests").rglob("*.py"):
        imported = imports_of(f"tests.{path.stem}", path)
        assert not [module for module in imported if _reaches(module, EVERYWHERE)], path


ENCODE_EXTRAS = ("torch", "igl", "pysdf", "distributed")
"""What the optional extras install (pyproject's encode, pysdf and batch): a plain ``pip install ksc`` lacks them."""


def test_decoding_loads_no_encode_dependency_in_a_fresh_process():
    """Decoding (holes' cut included) runs on the base dependencies alone, as a plain wheel install has them."""
    code = (
        "import sys, ksc, ksc.decoding.pipeline, ksc.models.runtime, ksc.format, ksc.mesh.io, ksc.mesh.holes\n"
        "import ksc.tools.serve\n"
        "assert not [m for m in sys.modules if m.startswith('ksc.encoding')], 'the encoder was imported'\n"
        "import ksc.cli.main  # reads the encoder's light settings, never its extras\n"
        f"loaded = [m for m in {ENCODE_EXTRAS!r} if m in sys.modules]\n"
        "assert not loaded, f'{loaded} imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
