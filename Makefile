# The two commands: `make demo` (whole pipeline on built-in synthetic data) and `make test`.
# Both create .venv and install the project on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow install clean-demo lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Everything but the tests marked slow (about 3 minutes on 2 cores); test-slow runs those.
# Test files run in TEST_WORKERS processes (pytest-xdist), each file's tests in one of them.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP)
	$(PYTEST) -m "not slow"

test-slow: $(STAMP)
	$(PYTEST) -m slow

lint: $(STAMP)
	$(BIN)/ruff check .

# The whole pipeline offline on a synthetic archive: data in demo_data/, runs in demo_outputs/.
# Reruns resume (each step skips completed work); `make clean-demo` starts over.
demo: $(STAMP)
	$(BIN)/python -m gmn_demo

clean-demo:
	rm -rf demo_data demo_outputs
