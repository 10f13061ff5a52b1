"""Training one student end to end: corpus + fastText + cached teacher distributions -> scored model.

Writes into the output folder `best-model.pt` (with its model card) and `results.json`:
the settings, dev and test scores, out-of-domain scores, per-sentence counts for the
bootstrap, and the model's cost measured on this machine. Both are written in the run's
`.partial` folder, which replaces the output folder only when both are complete.
"""
from __future__ import annotations

import json
import logging
import os
import platform
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

from swener import config
from swener.config import EVAL_CORPORA
from swener.data import corpora
from swener.data.subsets import load_gold
from swener.errors import SwenerError
from swener.kd import softlabels
from swener.runs import RESULTS_FILE, TRAINING_FILE, StudentResults

log = logging.getLogger("swener")



@dataclass
class StudentSettings:
    """One student run; alpha = 0 (and no alpha_end) is plain training (no teacher needed).

    `alpha_end`: teacher annealing, alpha moving linearly from `alpha` (epoch 1) to
    `alpha_end` (the last epoch); None keeps alpha constant. `gradient_probes`: batches per
    epoch whose two loss terms' gradient norms go into training.json (0: none).
    """

    family: str = "bilstm-crf"
    alpha: float = config.DEFAULT_ALPHA
    temperature: float = config.DEFAULT_TEMPERATURE
    kd_target: str = config.DEFAULT_KD_TARGET
    alpha_end: float | None = None
    hidden_size: int = config.STUDENT_HIDDEN
    epochs: int = config.STUDENT_EPOCHS
    learning_rate: float = config.STUDENT_LR
    batch_size: int = config.STUDENT_BATCH
    length_buckets: bool = config.STUDENT_BUCKETS  # batches of similar-length sentences (less padding)
    seed: int = 1
    max_sentences: int | None = None
    threads: int = config.THREADS  # torch threads for training and for the speed measurement
    oov: str = config.OOV_MODES[0]  # vectors of words outside the vocabulary: "subword" n-grams or "zero"
    transfer_text: str | None = None  # unlabelled text whose teacher distributions are also learnt (KD only)
    transfer_sentences: int | None = None  # its first N sentences (None: all that are cached)
    # transfer sentences per train sentence in an epoch, in turn from the whole set (None: all, every epoch)
    transfer_ratio: float | None = config.TRANSFER_RATIO
    gradient_probes: int = config.GRADIENT_PROBES
    # a budget of optimizer updates instead of `epochs` (epochs = updates / batches per epoch, at least 1)
    updates: int | None = None
    dev_only: bool = False  # score dev only (sweeps, which choose settings, never read test)
    # keyword options of the family's encoder (e.g. {"residual": True} for the ID-CNN); None: its defaults
    encoder_options: dict | None = None
    gold: int | None = None  # train on the gold subset of this many train sentences (`swener.data.subsets`)
    # inputs besides the fastText vector (swener.students.inputs): a per-word character CNN ...
    chars: bool = False
    char_dim: int = config.CHAR_DIM
    char_filters: int = config.CHAR_FILTERS
    # ... and the teacher's subword table: a backbone folder (or e5-small-sv / e5-small), None for none
    subwords: str | None = None
    subword_dim: int | None = config.SUBWORD_DIM  # PCA to this many dimensions (None: the backbone's width)
    subword_pooling: str = config.SUBWORD_POOLINGS[0]
    subword_trainable: bool = False

    @property
    def uses_teacher(self) -> bool:
        """Whether any epoch has a KD term."""
        return self.alpha > 0 or (self.alpha_end or 0.0) > 0


def settings_for(family: str, recipe: config.Recipe, alpha: tuple[float, float | None] | None = None,
                 temperature: float | None = None, kd_target: str | None = None,
                 transfer_text: str | Path | None = None, transfer_sentences: int | None = None,
                 **run: object) -> StudentSettings:
    """A run's settings: the KD values given, else the recipe's; a plain run takes no transfer set from the recipe."""
    start, end = alpha if alpha is not None else (recipe.alpha, recipe.alpha_end)
    kd_run = start > 0 or (end or 0.0) > 0
    return StudentSettings(
        family=family, alpha=start, alpha_end=end,
        temperature=temperature if temperature is not None else recipe.temperature,
        kd_target=kd_target or recipe.kd_target,
        transfer_text=str(transfer_text) if transfer_text else (recipe.transfer_text if kd_run else None),
        transfer_sentences=transfer_sentences if transfer_sentences is not None
        else recipe.transfer_sentences if kd_run else None, **run)


def load_soft_labels(soft_dir: Path, tokens: Sequence[Sequence[str]], split: str = "train", *,
                     needed: int | None = None, types: Sequence[str] | None = None) -> softlabels.SoftLabels:
    """Read and validate a split's cached teacher distributions against the student's corpus.

    `tokens` are the split's sentences (all of them); the cache must hold their first
    sentences (a cache of a slice covers the slice). `needed`: the student uses only the first
    N sentences, so a longer cache is cut to them. `types`: the student's entity types.
    """
    path = soft_dir / f"{split}.npz"
    soft = softlabels.read(path)
    needed = len(tokens) if needed is None else min(needed, len(tokens))
    cached = soft.header["sentences"]
    if cached < needed:
        raise SwenerError(f"{path}: {cached} sentences cached, the student trains on {needed}; rewrite the soft "
                          "labels with --max-sentences of at least that (or train on fewer)")
    if cached > len(tokens):
        raise SwenerError(f"{path}: {cached} sentences in the cache, {len(tokens)} in the corpus; "
                          "the corpus changed: rewrite the soft labels")
    softlabels.validate(soft, path, tokens[:cached], split=split, types=types)
    return soft.first(needed)


def load_transfer(soft_dir: Path, text: Path, sentences: int | None, teacher_sha256: str,
                  types: Sequence[str] | None = None, kbest: bool = False) -> list:
    """Flair sentences of a transfer text with the teacher's cached distributions and hard weight 0.

    The cache is `soft_dir/transfer-<name>.npz` from `swener teacher soft-labels --text`; it
    must come from the same teacher as the train cache and match the text's tokens, and
    hold the teacher's k best paths when `kbest` (else its sentences would teach nothing).
    """
    from flair.data import Sentence

    from swener.students.tagger import attach_soft_labels
    from swener.teacher.run import read_text_sentences, transfer_cache_name

    path = soft_dir / f"{transfer_cache_name(text)}.npz"
    soft = softlabels.read(path)
    tokens = read_text_sentences(Path(text), soft.header["sentences"])
    softlabels.validate(soft, path, tokens, split="transfer", teacher_sha256=teacher_sha256, types=types)
    if kbest and soft.kbest_paths is None:
        raise SwenerError(f"{path}: no k-best paths cached for --kd-target kbest; add them with `swener teacher "
                          f"kbest --teacher MODEL --soft-labels {soft_dir} --text {text}`")
    n = len(tokens) if sentences is None else sentences
    if n > len(tokens):
        raise SwenerError(f"{path}: {len(tokens)} sentences cached, {n} asked for; "
                          "rewrite the soft labels with more --max-sentences or ask for fewer")
    flair_sentences = [Sentence(words) for words in tokens[:n]]
    attach_soft_labels(flair_sentences, soft.first(n), hard_weight=0.0)
    return flair_sentences


def student_inputs(settings: StudentSettings, corpus, words: Sequence[str]) -> tuple[dict | None, object, dict]:
    """The character CNN's options (its alphabet from the train sentences the student learns from), the subword
    table (for the corpus's words and `words`, the fastText vocabulary), and what the model card says of them."""
    from swener.vectors.chars import alphabet

    chars = table = None
    facts: dict = {}
    if settings.chars:
        train = corpus.splits["train"][:settings.max_sentences]
        chars = {"alphabet": alphabet(t for s in train for t in s.tokens), "dim": settings.char_dim,
                 "filters": settings.char_filters}
        facts["chars"] = {"alphabet": len(chars["alphabet"]), "dim": settings.char_dim,
                          "filters": settings.char_filters, "width": config.CHAR_WIDTH}
    if settings.subwords:
        from swener.teacher.backbone import resolve_backbone
        from swener.vectors.subwords import build_table

        folder = Path(resolve_backbone(settings.subwords))
        if not folder.is_dir():
            raise SwenerError(f"--subwords {settings.subwords}: not a backbone folder; give one with tokenizer.json "
                              "and model.safetensors (e.g. embeddings/e5-small-sv)")
        corpus_words = (t for split in corpus.splits.values() for s in split for t in s.tokens)
        try:
            table = build_table(folder, [*corpus_words, *words], settings.subword_dim, settings.subword_pooling)
        except ValueError as err:
            raise SwenerError(f"--subword-dim: {err}") from None
        facts["subwords"] = {**table.meta, "dim": table.dim, "pooling": table.pooling,
                             "trainable": settings.subword_trainable, "words": len(table.words),
                             "bytes": table.nbytes()}
        log.info("subword table of %s: %d pieces x %d, %d words kept, %.1f MB", folder, table.pieces.shape[0],
                 table.dim, len(table.words), table.nbytes() / 1e6)
    return chars, table, facts


def train_student(settings: StudentSettings, corpus_name: str, embeddings_path: Path, soft_dir: Path | None,
                  out: Path, eval_corpora: Sequence[str] = EVAL_CORPORA, plugins: Sequence = (),
                  profile: str | None = None) -> dict:
    """Train, score and measure one student; returns (and writes) its results.

    `profile`: the Makefile profile that asked for the run ("quick" or "full"), recorded in
    results.json for `swener models` (None: not recorded; swener.serve.names infers it).

    `plugins`: more Flair trainer plugins (e.g. swener.tune's per-epoch report of dev F1).
    """
    import flair

    from swener.eval.evaluate import score_model
    from swener.kd.plugins import AlphaSchedule, GradientNorms
    from swener.students.tagger import StudentTagger, attach_soft_labels, build_student
    from swener.train.fit import TrainSettings, fit
    from swener.train.saved import save_atomic
    from swener.vectors.embeddings import CompactFastTextEmbeddings

    if settings.uses_teacher and settings.kd_target in config.CRF_ONLY_TARGETS \
            and config.FAMILIES.get(settings.family, ("", ""))[1] != "crf":
        raise SwenerError(f"--kd-target {settings.kd_target} needs a CRF student (a family ending in -crf), "
                          f"not {settings.family}")
    encoder_options = {**config.ENCODER_OPTIONS.get(config.FAMILIES.get(settings.family, ("", ""))[0], {}),
                       **(settings.encoder_options or {})}
    settings = replace(settings, encoder_options=encoder_options or None)  # results.json names the options used
    if settings.encoder_options:
        from swener.students import encoders

        try:
            encoders.check_options(config.FAMILIES[settings.family][0], settings.encoder_options)
        except ValueError as err:
            raise SwenerError(f"--encoder-option: {err}") from None
    corpus = load_gold(corpus_name, settings.gold)
    flair_corpus = corpora.to_flair(corpus, settings.max_sentences)
    card: dict = {"corpus": corpus_name, "corpus_licence": corpus.licence, "types": list(corpus.types),
                  "family": settings.family, "embeddings": str(embeddings_path), "oov": settings.oov,
                  "seed": settings.seed,
                  "alpha": settings.alpha, "alpha_end": settings.alpha_end, "temperature": settings.temperature,
                  "kd_target": settings.kd_target, "teacher": None, "licences": {corpus_name: corpus.licence}}
    teacher_tags = None
    labelled: int | None = None  # train sentences before an appended transfer set
    if settings.uses_teacher:
        if soft_dir is None:
            raise SwenerError("a KD student (alpha > 0) needs --soft-labels DIR; use --alpha 0 for plain training")
        tokens = [s.tokens for s in corpus.splits["train"]]
        soft = load_soft_labels(soft_dir, tokens, needed=settings.max_sentences, types=corpus.types)
        if settings.kd_target == "kbest" and soft.kbest_paths is None:
            raise SwenerError(f"{soft_dir / 'train.npz'}: no k-best paths cached for --kd-target kbest; add them with "
                              "`swener teacher kbest --teacher MODEL --soft-labels DIR`")
        attach_soft_labels(list(flair_corpus.train), soft)
        teacher_tags = soft.tags
        card["teacher"] = {"sha256": soft.header["teacher_sha256"], "path": soft.header.get("teacher_path"),
                           "soft_labels": str(soft_dir), "gold": soft.header.get("teacher_gold")}
        if settings.transfer_text is not None:
            from flair.data import Corpus

            transfer = load_transfer(soft_dir, Path(settings.transfer_text), settings.transfer_sentences,
                                     soft.header["teacher_sha256"], corpus.types, settings.kd_target == "kbest")
            flair_corpus = Corpus(train=list(flair_corpus.train) + transfer, dev=flair_corpus.dev,
                                  test=flair_corpus.test, sample_missing_splits=False)
            card["teacher"]["transfer"] = {"text": settings.transfer_text, "sentences": len(transfer),
                                           "ratio": settings.transfer_ratio}
            labelled = len(flair_corpus.train) - len(transfer)
    elif settings.transfer_text is not None:
        raise SwenerError("a transfer set only teaches through the teacher's distributions: give --alpha > 0")
    embeddings = CompactFastTextEmbeddings(embeddings_path, oov=settings.oov)
    chars, subwords, card["inputs"] = student_inputs(settings, corpus, embeddings.words)
    flair.set_seed(settings.seed)  # the initial weights too come from the seed (fit seeds the training itself)
    try:
        student = build_student(settings.family, embeddings, corpus.types, alpha=settings.alpha,
                                temperature=settings.temperature,
                                kd_target=settings.kd_target if settings.uses_teacher else config.DEFAULT_KD_TARGET,
                                hidden_size=settings.hidden_size, teacher_tags=teacher_tags, card=card,
                                encoder_options=settings.encoder_options, chars=chars, subwords=subwords,
                                subword_trainable=settings.subword_trainable)
    except ValueError as err:  # the cache's tags do not fit this student (validate checks them first)
        raise SwenerError(f"{soft_dir}: {err}; write the soft labels again for this corpus") from None
    results: dict = {"settings": asdict(settings), "corpus": corpus_name, "embeddings": str(embeddings_path),
                     "soft_labels": str(soft_dir) if soft_dir else None,
                     "transfer": card["teacher"].get("transfer") if card["teacher"] else None,
                     # the gold sentences of the KD run's teacher (None: all of train), for the gold curve
                     "teacher_gold": card["teacher"].get("gold") if card["teacher"] else None,
                     "machine": f"{platform.node()} ({os.cpu_count()} cores)", "profile": profile,
                     "inputs": card["inputs"]}  # the character CNN's and the subword table's facts ({}: fastText only)

    def score(partial: Path) -> None:
        """Score the trained model in its partial folder and write results.json there, before the swap."""
        best = partial / "best-model.pt"
        tagger = flair.nn.Classifier.load(best)
        assert isinstance(tagger, StudentTagger)
        results["training"] = json.loads((partial / TRAINING_FILE).read_text())
        results.update(score_model(tagger, best, corpus, settings.max_sentences, eval_corpora, settings.dev_only))
        tagger.card = {**card, **{f"{split}_f1": results["scores"][f"{corpus_name}/{split}"]["micro_f1"]
                                  for split in ("dev", "test") if f"{corpus_name}/{split}" in results["scores"]}}
        save_atomic(tagger, best)
        results["cost"]["size_bytes"] = best.stat().st_size
        if results["scores"].get(f"{corpus_name}/dev", {}).get("micro_f1", 1.0) == 0.0:
            hint = (" or --encoder-option residual=true" if config.FAMILIES[settings.family][0] == "idcnn"
                    and not settings.encoder_options.get("residual") else "")
            log.warning("%s: dev F1 0.0 after every epoch: this run did not train (it predicts no entity); "
                        "try another seed or learning rate%s", settings.family, hint)
        StudentResults.from_dict(results, partial / RESULTS_FILE).write(partial / RESULTS_FILE)

    epochs = settings.epochs
    per_epoch = None
    if labelled is not None and settings.transfer_ratio is not None:
        per_epoch = round(settings.transfer_ratio * labelled)
        log.info("each epoch: the %d train sentences and %d of the %d transfer sentences", labelled,
                 min(per_epoch, len(flair_corpus.train) - labelled), len(flair_corpus.train) - labelled)
    if settings.updates is not None:
        seen = len(flair_corpus.train) if per_epoch is None else min(len(flair_corpus.train), labelled + per_epoch)
        batches = -(-seen // settings.batch_size)
        epochs = max(1, round(settings.updates / batches))
        log.info("%d updates at %d batches per epoch: %d epochs", settings.updates, batches, epochs)
    results["epochs"] = epochs
    plugins = [*plugins, *([GradientNorms(settings.gradient_probes)] if settings.gradient_probes > 0 else [])]
    if settings.alpha_end is not None:
        plugins.append(AlphaSchedule(settings.alpha, settings.alpha_end, epochs))
    fit(student, flair_corpus, out, TrainSettings(epochs=epochs, learning_rate=settings.learning_rate,
                                                  batch_size=settings.batch_size, seed=settings.seed,
                                                  max_sentences=settings.max_sentences, threads=settings.threads,
                                                  length_buckets=settings.length_buckets,
                                                  labelled=labelled if per_epoch is not None else None,
                                                  transfer_per_epoch=per_epoch),
        plugins=plugins, finish=score)
    return results
