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
	.venv/bin/python benchmarks/codec.py
	.venv/bin/python benchmarks/decode.py
	.venv/bin/python benchmarks/distance.py
	.venv/bin/python benchmarks/rd.py
	.venv/bin/python benchmarks/hostile_files.py
	.venv/bin/python benchmarks/messy_inputs.py

clean:
	rm -rf build dist .pytest_cache web/dist
