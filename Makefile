# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-integration lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: the local CPU wheel, never an unpinned CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,ray,track,diffusion]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/w2s demo

# tests/test_report.py installs Debian's chromium (apt-get, as root) if no Chromium is found
# two pytest-xdist workers, each test file on one worker (its module fixtures load once)
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

test-integration: $(STAMP)
	# llama.cpp: the in-process llamacpp backend and the OpenAI-compatible server for the
	# HTTP backend (compiles once, ~6 min)
	$(BIN)/pip install --quiet 'llama-cpp-python[server]==0.3.36'
	$(BIN)/pytest -q -m integration

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/sweep.py

clean:
	rm -rf $(VENV) runs .pytest_cache
