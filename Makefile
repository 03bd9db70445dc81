# kpireport — the two commands that matter: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
OUT    ?= demo-output

.PHONY: demo test lint lab bench clean install dev dashboard

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

install: $(STAMP_RUN)
dev: $(STAMP_DEV)

## make demo: write the demo CRM dataset and build its report pack into $(OUT)/
demo: $(STAMP_RUN)
	$(BIN)/kpireport demo --out $(OUT)

## make test: the whole test suite
test: $(STAMP_DEV)
	$(BIN)/python -m pytest -q

lint: $(STAMP_DEV)
	$(BIN)/ruff check kpireport tests benchmarks
	$(BIN)/ruff format --check kpireport tests benchmarks

## make dashboard: the live dashboard on the demo CRM (written to $(OUT)/data if missing), http://127.0.0.1:8050/
dashboard: $(STAMP_RUN)
	$(BIN)/python -m pip install --quiet -e '.[dashboard]'
	$(BIN)/kpireport serve --demo $(OUT)/data --port $(or $(PORT),8050)

## make lab: JupyterLab on the report notebooks (kpireport/resources/notebooks/)
lab: $(STAMP_RUN)
	$(BIN)/python -m pip install --quiet -e '.[lab]'
	$(BIN)/jupyter lab kpireport/resources/notebooks/

bench: $(STAMP_DEV)  ## all benchmarks (several minutes)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/generate.py
	$(BIN)/python benchmarks/kpi_engine.py
	$(BIN)/python benchmarks/forecast_accuracy.py
	$(BIN)/python benchmarks/report_pack.py

clean:
	rm -rf $(OUT) .pytest_cache build *.egg-info
