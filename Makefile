# Two entry points for a newcomer: `make demo` and `make test` (both set up first).
.PHONY: setup demo test lint bench clean

setup:
	./scripts/setup.sh

demo: setup
	./scripts/demo.sh

test: setup
	.venv/bin/ruff check ksc format cli tests benchmarks
	.venv/bin/python -m pytest

bench: setup
	.venv/bin/python benchmarks/codec.py

clean:
	rm -rf build .pytest_cache
