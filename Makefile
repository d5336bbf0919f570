# Two entry points (see README): `make demo` and `make test`, each from a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	bash scripts/ensure-system-deps
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/swarm demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -n 2

bench: $(STAMP)
	$(PY) bench/run.py
	$(PY) bench/llm_bench.py
	$(PY) bench/chain_bench.py

clean:
	rm -rf $(VENV)
