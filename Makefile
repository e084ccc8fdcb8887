# caifu — quickstart: `make demo`, then `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CUSTOMERS ?= 100000

.PHONY: demo test lint install install-dev docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev,spark]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## demo: create .venv, install, generate the demo broker and ingest it (embedded default)
demo: install
	$(BIN)/caifu demo --customers $(CUSTOMERS)

## lint: ruff everywhere, mypy (strict on core/)
lint: install-dev
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy src/caifu/core

## test: install dev dependencies, lint, run the whole suite
test: install-dev lint
	$(BIN)/python -m pytest -q

docs: install
	$(BIN)/caifu docs --out docs/data-model.md

bench: install-dev
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) caifu-workspace caifu-demo .pytest_cache .mypy_cache .ruff_cache
