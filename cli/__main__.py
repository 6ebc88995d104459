"""``python -m ksc.cli``: the ``ksc`` command without the console script."""

from .main import main

main(prog_name="ksc")
