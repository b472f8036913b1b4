# synth-lab: `make demo` runs the quickstart notebook; `make test` runs lint and the whole suite.
# Both create .venv and install everything on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch; the package itself only asks for torch>=2.4.
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed
EXTRAS := notebook,train,qlora,server,dev

.PHONY: setup demo test lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip check
	touch $(STAMP)

demo: setup
	mkdir -p out
	$(BIN)/python -m synth_lab.demo notebooks/01_quickstart.ipynb --output out/01_quickstart.html

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
