# Stretto's two entry points: `make demo` and `make test`. Everything else is set-up they run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-down test chaos lint native clean help

help:
	@echo "make demo       build what is needed, start a local control plane with fake GPU nodes, run the demo"
	@echo "make demo-down  stop the demo's control plane"
	@echo "make test       the whole test suite (unit, simulator, shim, integration on a real control plane)"
	@echo "make chaos      the demo workload while the operator, extender, kube-apiserver and etcd are killed (~40 min)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

native:
	$(MAKE) -C gpu_interceptor/native

demo: $(STAMP) native
	$(BIN)/stretto demo

demo-down: $(STAMP)
	$(BIN)/stretto dev-cluster down

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: $(STAMP) native lint
	$(BIN)/stretto dev-cluster build --chart-tools
	$(BIN)/pytest

chaos: $(STAMP) native
	$(BIN)/stretto dev-cluster build
	$(BIN)/python bench/bench_chaos.py

clean:
	rm -rf $(VENV) gpu_interceptor/native/build
