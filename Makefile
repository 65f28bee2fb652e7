# The README's commands. Thin: the logic lives in the papertide CLI and the tests.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
HOME_DIR ?= var/demo
QUERY   ?= diffusion models for video generation

.PHONY: install demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch from this machine's local wheel store; a bare `torch` would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install  ## ingest + index the bundled 2,000-paper sample, then search it
	PAPERTIDE_HOME=$(HOME_DIR) $(BIN)/papertide ingest sample
	PAPERTIDE_HOME=$(HOME_DIR) $(BIN)/papertide ingest hf --file tests/fixtures/recorded/hf_daily_papers_2026-07-31.json
	PAPERTIDE_HOME=$(HOME_DIR) $(BIN)/papertide index
	PAPERTIDE_HOME=$(HOME_DIR) $(BIN)/papertide stats
	PAPERTIDE_HOME=$(HOME_DIR) $(BIN)/papertide search "$(QUERY)"

test: install  ## the full test suite
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q

bench: install  ## benchmarks on ../shared/data (74,728 papers, SciFact): prints tables, writes benchmarks/results/
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) var
