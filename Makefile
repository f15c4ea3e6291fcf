# One entry point for newcomers and CI. `make test` is what CI runs.
SHELL := /bin/bash
# jsii prints an end-of-life banner for Node 20 (the value lists the major versions to silence)
# on every CDK import; the pinned versions work with it.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
KAFKA_STAMP := .kafka/lib/.installed

.PHONY: help setup dist test lint typecheck unit integration synth diff deploy demo rehearse bench kafka-up kafka-down clean

help:
	@echo "make demo    - the whole lifecycle on a local Kafka broker (synth, create, update, re-sync)"
	@echo "make test    - lint, type-check and all tests (starts and stops a local broker)"
	@echo "make synth   - synthesize the CloudFormation template offline (no AWS credentials)"
	@echo "make diff / make deploy - npx cdk diff / deploy with the pinned CLI (needs AWS credentials)"
	@echo "make rehearse - a deploy rehearsal: the template's IAM policies, the real CDK provider"
	@echo "                framework and every service's access, against a local broker"
	@echo "make bench   - benchmarks against the bastion way and the raw AdminClient floor"
	@echo "make dist    - build the wheel (construct + engine + CLI) into dist/"

setup: $(PY_STAMP) $(NODE_STAMP) $(KAFKA_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt src/topic_sync_cdk/lambda-requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(KAFKA_STAMP): kafka/pom.xml $(wildcard kafka/iam-validator/src/main/java/topicsync/localkafka/*.java)
	scripts/local-kafka fetch

# The installable library: `pip install 'dist/topic_sync-<version>-py3-none-any.whl[cdk]'`.
dist: $(PY_STAMP)
	rm -rf dist build/lib
	$(BIN)/python -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir dist .

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(PY_STAMP)
	$(BIN)/mypy

unit: $(PY_STAMP)
	$(BIN)/pytest -m "not integration and not synth"

test: setup lint typecheck
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest

# Placeholder images allowed: synth must work before any service image exists (deploy refuses).
synth: $(PY_STAMP) $(NODE_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk synth --quiet -c allowPlaceholderImages=true

diff: $(PY_STAMP) $(NODE_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk diff

deploy: $(PY_STAMP) $(NODE_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk deploy

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/demo.py

# The template and its assets, re-synthesized only when what goes into them changed.
SYNTH_INPUTS := app.py cdk.json topics.yaml $(wildcard stacks/*.py) $(wildcard src/*/*.py) \
	src/topic_sync_cdk/lambda-requirements.txt
cdk.out/TopicSync.template.json: $(SYNTH_INPUTS) | $(PY_STAMP) $(NODE_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk synth --quiet -c allowPlaceholderImages=true

# Starts (and stops) its own broker on free ports; extra flags: REHEARSE_ARGS="--work-dir DIR".
rehearse: setup cdk.out/TopicSync.template.json
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m rehearsal $(REHEARSE_ARGS)

# Reuses a running broker; one it had to start is stopped again afterwards (also on failure).
# Extra flags: make bench BENCH_ARGS="--runs 3 --skip synth" (python -m bench.run --help).
bench: setup
	@set -eo pipefail; \
	log="$$(mktemp)"; \
	bootstrap="$$(scripts/local-kafka up 2>"$$log" | tail -n 1)" || { cat "$$log" >&2; rm -f "$$log"; exit 1; }; \
	if ! grep -q "already running" "$$log"; then trap 'scripts/local-kafka down' EXIT; trap 'exit 130' INT TERM; fi; \
	cat "$$log" >&2; rm -f "$$log"; \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.run --bootstrap "$$bootstrap" $(BENCH_ARGS)

kafka-up: $(KAFKA_STAMP)
	scripts/local-kafka up

kafka-down:
	scripts/local-kafka down

clean:
	-scripts/local-kafka down
	rm -rf cdk.out build dist .pytest_cache .mypy_cache .ruff_cache
