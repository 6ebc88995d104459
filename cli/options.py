"""Options shared by several commands."""

from __future__ import annotations

import functools
import logging

import click


def configure_logging(verbose: int, quiet: bool) -> None:
    """Route the library's ``logging`` to stderr at the level -v/-q ask for."""
    if quiet:
        level = logging.ERROR
    else:
        level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(format="ksc: %(levelname)s: %(message)s")
    logging.getLogger("ksc").setLevel(level)


def verbosity_options(function):
    """``-v`` (repeatable: info, then debug logging) and ``-q`` (errors only, no progress or summary)."""

    @click.option("-v", "--verbose", count=True, help="More logging (repeat for debug).")
    @click.option("-q", "--quiet", is_flag=True, help="Only print errors.")
    @functools.wraps(function)
    def wrapper(*args, verbose, quiet, **kwargs):
        configure_logging(verbose, quiet)
        return function(*args, quiet=quiet, **kwargs)

    return wrapper


device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Torch device: auto (CUDA when available, else CPU), cpu, cuda, cuda:1, ...",
)
