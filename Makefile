# swener workflow. Every step is a target with real file dependencies.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORPUS ?= webbnyheter2012
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install test test-all stats clean-venv

$(BIN)/swener: setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/swener

# The test command of the README and CI: everything but the tests marked slow.
test: install
	$(BIN)/python -m pytest -q -m "not slow" tests

test-all: install
	$(BIN)/python -m pytest -q tests

stats: install
	$(BIN)/swener corpus stats $(CORPUS)

clean-venv:
	rm -rf $(VENV)
