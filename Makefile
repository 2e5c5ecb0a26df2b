# guardstream developer entry points. On a fresh machine `make test` installs what it needs:
# a Python 3.11 venv with the package and dev tools, Debian's redis-server,
# prometheus-alertmanager, chromium and prometheus (promtool) (and Java/Maven if absent), and the Kafka broker jars into
# ~/.cache/guardstream (outside the work tree).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PY ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
VPY := $(VENV)/bin/python
PYTEST_ARGS ?=

# Commands the harness runs, and the Debian packages that provide them (javac: the e2e test
# compiles a kafka-clients producer, tests/support/java; Alertmanager: the alert forwarder's
# tests and the demo; Chromium: the status page's browser test; promtool, from prometheus:
# the metrics and rules checks).
SYSTEM_DEPS := redis-server:redis-server java:openjdk-17-jre-headless \
	javac:openjdk-17-jdk-headless mvn:maven \
	prometheus-alertmanager:prometheus-alertmanager chromium:chromium promtool:prometheus

.PHONY: help deps system-deps kafka-jars test lint demo bench

help:
	@echo "make deps   - venv (.venv), redis-server, Alertmanager, Chromium, promtool, Java/Maven if missing, Kafka jars"
	@echo "make test   - the whole test suite (PYTEST_ARGS='-k ...' to narrow it)"
	@echo "make demo   - Kafka + Redis + worker + traffic generator, live view (DEMO_SECONDS=N)"
	@echo "make bench  - ingest benchmark: raw aiokafka vs guardstream (BENCH_ARGS=...)"
	@echo "make lint   - ruff check + ruff format --check + mypy --strict"

deps: $(VENV)/.installed system-deps kafka-jars

$(VPY):
	$(PY) -m venv $(VENV)

# Reinstalled only when pyproject.toml changes: keeps `make test` fast and offline-friendly.
$(VENV)/.installed: pyproject.toml | $(VPY)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $@

# apt-get runs only when a command is missing, so a provisioned machine never needs root.
system-deps:
	@missing=""; \
	for pair in $(SYSTEM_DEPS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  echo "installing:$$missing"; \
	  $$sudo apt-get update -q && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

kafka-jars: $(VENV)/.installed system-deps
	$(VPY) -m devstack fetch

test: deps
	$(VPY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy schemas topics workers devstack bench examples

demo: deps
	$(VPY) -m devstack.demo

BENCH_ARGS ?=
bench: deps
	$(VPY) -m bench.ingest $(BENCH_ARGS)
