# Two commands set everything up: `make run` (the main job) and `make test`.
# Each creates or reuses .venv: torch==2.13.0 first (a CPU build; an unpinned torch
# would pull a multi-GB CUDA build), then ndogo with its dependencies.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= $(or $(NDOGO_DATA),../shared/data/masakhaner)
LANG_  ?= hau
OUT    ?= runs/quickstart

.PHONY: run test lint clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/ndogo finetune --model minilm --data $(DATA) --lang $(LANG_) --out $(OUT)/minilm-$(LANG_) --epochs 1 --lr 1e-4
	$(BIN)/ndogo evaluate $(OUT)/minilm-$(LANG_) --data $(DATA) --lang $(LANG_)

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench

clean-venv:
	rm -rf $(VENV)
