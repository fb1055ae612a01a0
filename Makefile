# xray4d: two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, pinned to the CPU build on this machine's disk, then the package with the test,
# import (NXtomo, European XFEL) and movie (MP4) extras, so that their tests run too
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,import,movie]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/xray4d demo --out demo_out --force

test: $(STAMP)
	$(PY) -m pytest -n 2 tests

bench: $(STAMP)
	$(PY) benchmarks/bench_projector.py
	$(PY) benchmarks/bench_quality.py

clean:
	rm -rf $(VENV) demo_out
