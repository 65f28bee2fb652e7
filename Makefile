# The README's commands. Thin: the logic lives in the papertide CLI and the tests.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
HOME_DIR ?= var/demo
HOST    ?= 127.0.0.1
PORT    ?= 8000

.PHONY: install demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch from this machine's local wheel store; a bare `torch` would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,postgres]'
	touch $@

install: $(BIN)/.installed  ## the venv, and Debian chromium for the browser tests
	sh scripts/ensure-chromium.sh

demo: install  ## the site on the bundled 2,000-paper sample: http://127.0.0.1:8000
	PAPERTIDE_HOME=$(HOME_DIR) $(BIN)/papertide ingest sample
	PAPERTIDE_HOME=$(HOME_DIR) $(BIN)/papertide ingest hf --file tests/fixtures/recorded/hf_daily_papers_2026-07-31.json
	PAPERTIDE_HOME=$(HOME_DIR) $(BIN)/papertide ingest hf --file tests/fixtures/recorded/hf_daily_papers_2026-08-03.json
	PAPERTIDE_HOME=$(HOME_DIR) $(BIN)/papertide index
	PAPERTIDE_HOME=$(HOME_DIR) $(BIN)/papertide serve --host $(HOST) --port $(PORT)

test: install  ## the full test suite
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q

bench: install  ## benchmarks on ../shared/data (74,728 papers, SciFact): prints tables, writes benchmarks/results/
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) var
