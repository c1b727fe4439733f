# The two commands of the README: `make demo` (the main job) and `make test` (the fast suite).
# Both create and fill the virtual environment themselves on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ET     := $(VENV)/bin/edgetune
STAMP  := $(VENV)/.edgetune-installed
DEMO   ?= runs/demo

export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup demo test test-slow lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh $(DEMO)

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check edgetune tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf runs .pytest_cache
