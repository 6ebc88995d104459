# Two entry points for a newcomer: `make demo` and `make test` (both set up first).
.PHONY: setup demo test packages lint bench clean

setup:
	./scripts/setup.sh

demo: setup
	./scripts/demo.sh

test: setup
	.venv/bin/ruff check ksc format cli tests benchmarks research
	.venv/bin/python -m pytest

# The wheel (with the viewer) and the npm tarball, built, installed cleanly and used (CI runs it after test).
packages: setup
	./scripts/check-packages.sh

bench: setup
	CPATH=/usr/include/eigen3 .venv/bin/python -m pip -q install -e ".[encode,batch,test,bench]"
	.venv/bin/python -m benchmarks.codec
	.venv/bin/python -m benchmarks.decode
	.venv/bin/python -m benchmarks.rd
	.venv/bin/python -m benchmarks.hostile_files
	.venv/bin/python -m benchmarks.messy_inputs

clean:
	rm -rf build dist .pytest_cache web/dist
