# spotgrade: every target does its own set-up (virtualenv, pip, npm) and skips what is up to date.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
export CDK_DISABLE_CLI_TELEMETRY := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export TF_CPP_MIN_LOG_LEVEL := 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The stacks (docs/architecture.md, "Stacks"): the shared one, STACK (cdk.json's stackName), and one per run,
# STACK-RUN. RUN defaults to cdk.json's runId, except for destroy, which removes only the run named.
CDK_JSON = $(shell $(PYTHON) -c 'import json, sys; print(json.load(open("cdk.json"))["context"][sys.argv[1]])' $(1))
STACK ?= $(call CDK_JSON,stackName)
RUN_ID = $(or $(RUN),$(call CDK_JSON,runId))
RUN_STACK = $(STACK)-$(RUN_ID)
CDK_CONTEXT = -c stackName=$(STACK) -c runId=$(RUN_ID)
# The run and the stack are named by RUN= and STACK=, so that the stacks named on the command line are the app's.
CHECK_ARGS = case " $(ARGS) " in *runId=*|*stackName=*) \
	echo "error: name the run with RUN=<run-id> and the shared stack with STACK=<name>, not in ARGS" >&2; exit 2;; esac

.PHONY: install train lint test synth deploy diff destroy destroy-shared bench clean

install: $(STAMP) $(NODE_STAMP)

# The pinned requirements, then the project itself (editable, no dependencies: they are the pins above), which
# puts the `spotgrade` command in $(VENV)/bin.
$(STAMP): requirements.txt requirements-dev.txt training/requirements.txt training/requirements-cpu.txt pyproject.toml \
		training/__init__.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(NODE_STAMP): package.json $(wildcard package-lock.json)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

train: install
	$(PY) -m training train $(ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy

# One file per worker at a time, in collection order: tests/rehearsal first, so its longest file (about 9 of
# the suite's 21 worker-minutes) starts at once. xdist's default reorder (most tests first) started it last.
test: lint
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder $(ARGS)

synth: install
	@$(CHECK_ARGS)
	npx cdk synth $(CDK_CONTEXT) $(ARGS)

# Deploys the shared stack (a no-op once it is there) and the run's stack; other runs' stacks are not touched.
deploy: install
	@$(CHECK_ARGS)
	$(PY) -m training preflight $(CDK_CONTEXT) $(ARGS)
	npx cdk deploy $(CDK_CONTEXT) $(ARGS) $(STACK) $(RUN_STACK)

diff: install
	@$(CHECK_ARGS)
	npx cdk diff $(CDK_CONTEXT) $(ARGS) $(STACK) $(RUN_STACK)

# Removes the run's stack only: its files stay in the bucket and its log group stays (python -m training runs).
destroy: install
	@$(CHECK_ARGS)
	@test -n "$(RUN)" || { echo "error: name the run to destroy: make destroy RUN=<run-id> (the shared stack: make destroy-shared)" >&2; exit 2; }
	npx cdk destroy $(CDK_CONTEXT) $(ARGS) $(RUN_STACK)

# Removes the shared stack (CloudFormation refuses while a run stack still imports it). The buckets stay unless
# it was deployed with retainArtifacts=false.
destroy-shared: install
	@$(CHECK_ARGS)
	npx cdk destroy --exclusively $(CDK_CONTEXT) $(ARGS) $(STACK)

bench: install
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) node_modules cdk.out outputs .pytest_cache spotgrade.egg-info build
