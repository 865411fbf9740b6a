# llmops: `make run` brings the pipeline up and opens a chat; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Every dependency (of `.[dev]`, transitively; pip and setuptools too), pinned with the sha256 of each file pip may
# pick: `make lock` writes it (scripts/lock.py) from the index alone. torch is PyPI's build: it brings CUDA's
# libraries (several GB) and runs on CPU-only machines too.
LOCK := requirements/lock.txt
LOCK_INSTALL := $(PY) -m pip install --require-hashes --no-deps -r $(LOCK)

.PHONY: install install-gpu lock kafka run up ask test test-unit test-e2e lint typecheck check compose-config k8s-validate bench bench-quick bench-gpu docs test-faults soak fuzz clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# The hash-locked dependencies first (pip upgrades itself from the lock too), then llama-cpp-python (a cached
# source build, its sdist hash-checked), then the project alone; `pip check`: nothing is missing or conflicting.
# Models are assembled and hash-checked once.
$(STAMP): $(PY) pyproject.toml $(LOCK) scripts/install_llama_cpp.sh
	$(LOCK_INSTALL)
	scripts/install_llama_cpp.sh $(PY) $${LLMOPS_LLAMA_VARIANT:-cpu}
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	$(VENV)/bin/llmops models fetch
	touch $(STAMP)

install: $(STAMP)

install-gpu: $(PY)
	$(LOCK_INSTALL)
	CUDA_ARCHITECTURES=$${CUDA_ARCHITECTURES:-90} scripts/install_llama_cpp.sh $(PY) cuda
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	$(VENV)/bin/llmops models fetch
	touch $(STAMP)

# Re-resolve requirements/lock.txt after a change of pyproject.toml (LOCK_ARGS=--upgrade: newest allowed versions).
lock:
	$(PYTHON) scripts/lock.py $(LOCK_ARGS)

# Apache Kafka's broker jars from Maven Central (infra/kafka/pom.xml), each checked against infra/kafka/jars.sha256,
# into ~/.cache/llmops/kafka/<version>/libs: the tests' broker and `llmops up --broker kafka`. Needs Java 17+ and mvn.
kafka: $(STAMP)
	$(PY) scripts/kafka_jars.py

# The embedded stack on Tansu (Python alone: no Java, no Maven needed).
run: install
	$(VENV)/bin/llmops up --chat

up: install
	$(VENV)/bin/llmops up

test: install kafka
	$(VENV)/bin/pytest

test-unit: install kafka
	$(VENV)/bin/pytest -m "not e2e"

test-e2e: install kafka
	$(VENV)/bin/pytest -m e2e

# Delivery under faults (also part of `make test`): kill -9 per stage under load, a stage restarted, replicas joining
# and leaving, a fuzz storm; exactly-once under kill -9; a three-node Kafka cluster losing its leader, then unreachable.
test-faults: install kafka
	$(VENV)/bin/pytest tests/e2e/test_reliability.py tests/e2e/test_faults.py tests/e2e/test_exactly_once.py \
		tests/e2e/test_broker_failures.py

# 30 minutes at a steady rate: memory growth and lag of every service, written to docs/reliability.md (not in CI).
soak: install
	$(PY) scripts/soak.py $(SOAK_ARGS)

# Coverage-guided fuzzing (atheris) of the request intake and envelope parsing over the committed corpus
# (tests/data/fuzz/intake, which `make test` replays); FUZZ_SECONDS=300 by default. Not in CI: it runs for minutes.
FUZZ_SECONDS ?= 300
fuzz: install
	$(PY) -m pip install --require-hashes --no-deps -q -r requirements/fuzz.txt
	$(PY) scripts/fuzz_intake.py -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=4096 -print_final_stats=1

lint: install
	$(VENV)/bin/ruff check shared services tests examples benchmarks scripts
	$(VENV)/bin/ruff format --check shared services tests examples benchmarks scripts

typecheck: install
	$(VENV)/bin/mypy

check: lint typecheck test

# The AsyncAPI document of every topic and message, generated from the apps (a test fails when it is stale).
docs: install
	$(PY) scripts/gen_asyncapi.py
	$(PY) scripts/gen_acls.py

# Speed and memory figures: every benchmarks/bench_*.py, written to docs/benchmarks.md (BENCH=name runs one).
bench: install
	$(PY) -m benchmarks $(BENCH)

# The regression guard CI runs (under 3 minutes); last line: transport/overhead p50/p99 in ms.
bench-quick: install
	$(PY) -m benchmarks.quick

# On an NVIDIA GPU machine: CUDA build, then tokens/s for 1, 2, 4, 8 workers with full offload next to CPU.
bench-gpu: install-gpu
	scripts/bench_gpu.sh $(PY)

compose-config:
	docker-compose -f docker-compose.yml config -q
	GATEWAY_AUTH_FILE=./infra/gateway/auth.example.yaml docker-compose -f docker-compose.yml -f docker-compose.secure.yml config -q

# Every infra/k8s overlay rendered (tests/infra/kustomize.py: no kustomize binary needed) and each object
# validated offline against the Kubernetes JSON schemas and the KEDA/Strimzi CRDs; then the deployment tests.
k8s-validate: install
	$(PY) -m tests.infra.kustomize --validate infra/k8s/overlays/*
	$(VENV)/bin/pytest -q tests/infra

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
