"""The transformer teacher: build it, and compute its per-token distributions for the cache."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from swener import config
from swener.atomic import write_json
from swener.batching import in_index_order, length_batches
from swener.config import DEFAULT_KBEST, EVAL_CORPORA
from swener.data import corpora
from swener.data.subsets import gold_subset, load_gold
from swener.data.tags import span_dictionary, tagger_tags
from swener.data.tokens import is_tokens_file, read_tokens
from swener.errors import DataError, SwenerError
from swener.files import open_text, sha256_of, text_name
from swener.kd import softlabels
from swener.kd.folds import block, parse_fold, training_part
from swener.kd.softlabels import canonical_tags
from swener.teacher.gold import GOLD_FILE, cache_record, gold_record, scaled_schedule

log = logging.getLogger("swener")


@dataclass
class TeacherSettings:
    """The teacher's architecture and fine-tuning defaults (see the README)."""

    backbone: str = config.BACKBONE  # e5-small with its vocabulary trimmed to Swedish use (`swener backbone trim`)
    use_crf: bool = config.TEACHER_CRF
    decoding: str = config.TEACHER_DECODING  # a softmax head decoded as a BIOES chain (`swener.teacher.model`)
    subtoken_pooling: str = "first"
    layers: str = "-1"
    learning_rate: float = config.TEACHER_LR
    batch_size: int = config.TEACHER_BATCH
    epochs: int = config.TEACHER_EPOCHS  # at most; the best epoch on dev is kept and `patience` stops early
    patience: int = config.TEACHER_PATIENCE
    # With the trimmed vocabulary the table is small enough to train (the untrimmed 96 M-row
    # table made each dense AdamW step cost more than the forward and backward passes).
    freeze_word_embeddings: bool = config.TEACHER_FREEZE
    use_amp: bool = False  # bf16 autocast while training
    length_buckets: bool = config.TEACHER_BUCKETS  # batches of similar-length sentences (`swener.train.buckets`)
    seed: int = config.TEACHER_SEED
    fold: str | None = None  # "I/K": a fold teacher, trained without block I of K of train (`swener.kd.folds`)
    gold: int | None = None  # train on the gold subset of this many sentences (`swener.data.subsets`); None: all
    min_updates: int | None = None  # scale epochs and patience up to at least this many updates (swener.teacher.gold)


def build_teacher(backbone_path: str, types: Sequence[str], settings: TeacherSettings):
    """A TeacherTagger (flair SequenceTagger) over fine-tuned transformer embeddings, BIOES tags of `types`."""
    from flair.embeddings import TransformerWordEmbeddings

    from swener.teacher.model import TeacherTagger

    embeddings = TransformerWordEmbeddings(backbone_path, layers=settings.layers, fine_tune=True,
                                           subtoken_pooling=settings.subtoken_pooling, allow_long_sentences=True)
    if settings.freeze_word_embeddings:
        embeddings.model.get_input_embeddings().weight.requires_grad_(False)
    return TeacherTagger(embeddings=embeddings, tag_dictionary=span_dictionary(types), tag_type="ner",
                         use_crf=settings.use_crf, use_rnn=False, reproject_embeddings=False,
                         decoding=settings.decoding)


def train_teacher(corpus_name: str, settings: TeacherSettings, out: Path, max_sentences: int | None = None,
                  plugins: Sequence = ()) -> Path:
    """Fine-tune the teacher on a corpus's train split (or gold subset), epochs chosen on dev; returns best-model.pt."""
    import flair

    from swener.teacher.backbone import resolve_backbone
    from swener.train.curve import DevCurve
    from swener.train.fit import TrainSettings, fit

    corpus = corpora.load(corpus_name)
    total = len(corpus.splits["train"])
    corpus = gold_subset(corpus, settings.gold)
    fold = None
    if settings.fold:
        number, folds = parse_fold(settings.fold)
        train = corpus.splits["train"][:max_sentences]
        held = block(len(train), number, folds)
        corpus.splits["train"] = training_part(train, number, folds)
        fold = {"fold": number, "folds": folds, "held_out": [held.start, held.stop], "train_sentences": len(train)}
    n_train = len(corpus.splits["train"][:max_sentences])
    schedule = scaled_schedule(settings.epochs, settings.patience, n_train, settings.batch_size,
                                    settings.min_updates)
    flair.set_seed(settings.seed)  # the head's initial weights too come from the seed (fit seeds the training)
    tagger = build_teacher(resolve_backbone(settings.backbone), corpus.types, settings)
    curve = DevCurve(patience=schedule[1])

    def record_fold(folder: Path) -> None:
        if fold:
            write_json(folder / FOLD_FILE, fold)
        if settings.gold is not None or settings.min_updates is not None:
            write_json(folder / GOLD_FILE, gold_record(settings.gold, n_train, total - len(corpus.splits["train"]),
                                                      schedule, settings.min_updates))

    return fit(tagger, corpora.to_flair(corpus, max_sentences), out,
               TrainSettings(epochs=schedule[0], learning_rate=settings.learning_rate,
                             batch_size=settings.batch_size, fine_tune=True, seed=settings.seed,
                             max_sentences=max_sentences, use_amp=settings.use_amp,
                             length_buckets=settings.length_buckets),
               plugins=[curve, *plugins], finish=record_fold)


FOLD_FILE = "fold.json"  # beside a fold teacher's best-model.pt: the block of train it did not see


def teacher_fold(teacher_path: Path) -> dict | None:
    """A fold teacher's held-out block (fold.json beside the model), None for a teacher of all of train."""
    path = Path(teacher_path).parent / FOLD_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def log_distributions(tagger, sentences: list, batch_size: int = 32, bf16: bool = False,
                      sort_by_length: bool = True) -> Iterator[np.ndarray]:
    """Per sentence (in the given order), the tagger's [tokens, tags] log-distribution on the canonical tags.

    Softmax head: log-softmax of the scores, or, decoded as a BIOES chain (TeacherTagger), the
    constrained chain's marginals. CRF head: posterior log-marginals by forward-backward
    (Flair's `return_probabilities_for_all_classes` is not a marginal under a CRF). Batches are
    made of sentences of similar length (less padding); `bf16` runs the network under CPU
    bf16 autocast (the distributions are computed in float32).
    """
    import torch

    from swener.kd import crf

    names = tagger_tags(tagger)
    types = sorted({name[2:] for name in names if name[:2] in ("B-", "I-", "E-", "S-")})
    wanted = canonical_tags(types)
    missing = [tag for tag in wanted if tag not in names]
    if missing:
        raise ValueError(f"the tagger lacks the canonical tags {missing}")
    columns = torch.tensor([names.index(tag) for tag in wanted])
    chain = getattr(tagger, "constrained", lambda: False)()

    def run(ids: list[int]) -> list[np.ndarray]:
        batch = [sentences[i] for i in ids]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            tensor, lengths = tagger._prepare_tensors(batch)
            scores = tagger.forward(tensor, lengths)
        if tagger.use_crf:
            logp = crf.tagger_marginals(tagger, scores, lengths)
            rows = [logp[i, :n] for i, n in enumerate(lengths.tolist())]
        elif chain:
            logp = tagger.chain_log_marginals(scores, lengths.tolist())
            rows = [logp[i, :n] for i, n in enumerate(lengths.tolist())]
        else:
            rows = torch.split(torch.log_softmax(scores.float(), dim=-1), lengths.tolist())
        for sentence in batch:
            sentence.clear_embeddings()
        return [row[:, columns].float().cpu().numpy() for row in rows]

    tagger.eval()
    with torch.no_grad():
        batches = length_batches([len(s) for s in sentences], batch_size, sort=sort_by_length)
        yield from in_index_order((ids, run(ids)) for ids in batches)


def read_text_sentences(path: Path, max_sentences: int | None = None) -> list[list[str]]:
    """Token lists of the sentences of a raw text file (.txt or .txt.gz), by the swener tokeniser."""
    from swener.data.tokenizer import split_sentences

    if not Path(path).is_file():
        raise DataError(path, "no such text file; give a raw text file (.txt or .txt.gz); a recipe's relative "
                              "transfer_text is a file of the data folder (SWENER_DATA or ../shared/data)")
    if is_tokens_file(path):  # held-back corpus sentences: their own tokens, not the tokeniser's
        return read_tokens(path, max_sentences)
    sentences: list[list[str]] = []
    with open_text(path) as handle:
        for line in handle:
            for sentence in split_sentences(line):
                if len(sentence) <= 200:  # very long lines are lists or tables, not sentences
                    sentences.append([t.text for t in sentence])
            if max_sentences is not None and len(sentences) >= max_sentences:
                return sentences[:max_sentences]
    return sentences


def transfer_cache_name(text: Path) -> str:
    """The cache file stem of a transfer text: regeringen.txt.gz -> transfer-regeringen."""
    return f"transfer-{text_name(text)}"


TRANSFER_CHUNK = 2000  # sentences per saved chunk of a transfer cache: one progress line, one resumable step


def write_soft_labels(teacher_path: Path, corpus_name: str, splits: list[str], texts: list[Path], out: Path,
                      max_sentences: int | None = None, topk: int | None = None, batch_size: int = 32,
                      bf16: bool = False, chunk_sentences: int = TRANSFER_CHUNK, gold: int | None = None) -> list[Path]:
    """Run the teacher once over corpus splits (and transfer texts) and cache its distributions.

    A text is processed in chunks of `chunk_sentences`, each saved under
    `<out>/transfer-<name>.chunks/` as it is done: a pass that is stopped resumes at the first
    missing chunk. The chunks are then joined into `<out>/transfer-<name>.npz`. `gold`: the splits' train
    is the gold subset of that size (`swener.data.subsets`).
    """
    from flair.data import Sentence

    from swener.teacher.model import load_teacher

    tagger = load_teacher(teacher_path)
    teacher_sha = sha256_of(teacher_path)
    corpus = load_gold(corpus_name, gold)
    tags = canonical_tags(sorted({t[2:] for t in tagger_tags(tagger) if t[:2] in ("B-", "S-")}))
    common = dict(tags=tags, teacher_sha256=teacher_sha, topk=topk)
    provenance = {"fold": teacher_fold(teacher_path)} if teacher_fold(teacher_path) else {}
    provenance.update(cache_record(teacher_path, gold))  # the gold subset cached, the one the teacher saw
    written = []
    for split in splits:
        if split not in corpus.splits:
            raise ValueError(f"{corpus_name} has no split {split!r}")
        tokens = [s.tokens for s in corpus.splits[split][:max_sentences]]
        started = time.perf_counter()
        distributions = []
        for i, dist in enumerate(log_distributions(tagger, [Sentence(words) for words in tokens], batch_size, bf16)):
            distributions.append(dist)
            if (i + 1) % 1000 == 0:
                log.info("%s/%s: %d/%d sentences", corpus_name, split, i + 1, len(tokens))
        path = softlabels.write(out / f"{split}.npz", distributions, tokens=tokens, corpus=corpus_name, split=split,
                                extra={"teacher_path": str(teacher_path), "seconds": time.perf_counter() - started,
                                       "max_sentences": max_sentences, **provenance},
                                **common)
        log.info("wrote %s (%d sentences, %.1f s, %d bytes)", path, len(tokens), time.perf_counter() - started,
                 path.stat().st_size)
        written.append(path)
    for text in texts:
        tokens = read_text_sentences(text, max_sentences)
        chunks = out / f"{transfer_cache_name(text)}.chunks"
        distributions, seconds, this_pass, unknown = [], 0.0, 0.0, 0
        for number, first in enumerate(range(0, len(tokens), chunk_sentences)):
            part = tokens[first:first + chunk_sentences]
            soft, spent, saved = _transfer_chunk(tagger, chunks / f"{number:05d}.npz", part, f"text:{text.name}",
                                                 batch_size, bf16, tags, teacher_sha)
            if spent is None:
                unknown += 1
            else:
                seconds += spent
            this_pass += 0.0 if saved else spent
            distributions += [soft.sentence(i) for i in range(len(soft))]
            log.info("%s: %d/%d sentences (%s)", text.name, first + len(part), len(tokens),
                     "cached" if saved else f"{spent:.0f} s")
        # seconds: the teacher time of every chunk when it was computed, whichever pass that was
        path = softlabels.write(out / f"{transfer_cache_name(text)}.npz", distributions, tokens=tokens,
                                corpus=f"text:{text.name}", split="transfer",
                                extra={"teacher_path": str(teacher_path), "seconds": seconds,
                                       "seconds_this_pass": this_pass, "chunks_without_seconds": unknown,
                                       "max_sentences": max_sentences, "chunk_sentences": chunk_sentences,
                                       "teacher_gold": provenance["teacher_gold"]}, **common)
        untimed = f", {unknown} chunks from before chunks were timed not counted" if unknown else ""
        log.info("wrote %s (%d sentences, %.1f s of teacher time, %.1f s of it this pass%s, %d bytes)", path,
                 len(tokens), seconds, this_pass, untimed, path.stat().st_size)
        written.append(path)
    return written


def _transfer_chunk(tagger, path: Path, tokens: list[list[str]], source: str, batch_size: int, bf16: bool,
                    tags: list[str], teacher_sha: str) -> tuple[softlabels.SoftLabels, float | None, bool]:
    """One chunk of a transfer cache: the saved one if it holds these sentences from this teacher, else computed.

    Returns the chunk, the teacher seconds it took when it was computed (None for a saved chunk
    from before chunks recorded them) and whether it was saved already.
    """
    from flair.data import Sentence

    if path.exists():
        try:
            soft = softlabels.read(path)
            softlabels.validate(soft, path, tokens, split="transfer", teacher_sha256=teacher_sha)
            if soft.tags == tags:
                return soft, soft.header.get("seconds"), True
        except SwenerError as err:  # damaged, or from another text, chunk size or teacher
            log.info("computing %s again: %s", path, err)
    started = time.perf_counter()
    distributions = list(log_distributions(tagger, [Sentence(words) for words in tokens], batch_size, bf16))
    seconds = time.perf_counter() - started
    softlabels.write(path, distributions, tags=tags, tokens=tokens, teacher_sha256=teacher_sha, corpus=source,
                     split="transfer", extra={"seconds": seconds})
    return softlabels.read(path), seconds, False


def invalid_bioes(tagger, sentences: list, batch_size: int = 32) -> dict:
    """How many predicted BIOES tag sequences break the scheme, and at how many places."""
    from flair.data import Sentence

    from swener.kd.bioes import invalid_transitions

    flair_sentences = [Sentence(s.tokens) for s in sentences]
    tagger.predict(flair_sentences, mini_batch_size=batch_size, label_name="bioes", force_token_predictions=True)
    breaks = [invalid_transitions([t.get_label("bioes").value for t in fs]) for fs in flair_sentences]
    return {"sentences": len(breaks), "sentences_with_invalid": sum(b > 0 for b in breaks),
            "invalid_transitions": sum(breaks)}


def compare_decodings(tagger, corpus, max_sentences: int | None = None) -> dict:
    """Dev F1 and invalid BIOES sequences of a softmax teacher under each decoding (the choice is made on dev)."""
    from swener.eval.evaluate import evaluate
    from swener.teacher.model import DECODINGS

    kept = tagger.decoding
    rows = {}
    try:
        for decoding in DECODINGS:
            tagger.decoding = decoding
            result, _ = evaluate(tagger, corpus, "dev", max_sentences=max_sentences)
            rows[decoding] = {"dev_f1": result.micro_f1, "per_type": result.per_type,
                              **invalid_bioes(tagger, corpus.splits["dev"][:max_sentences])}
    finally:
        tagger.decoding = kept
    return rows


def evaluate_teacher(teacher_path: Path, corpus_name: str, out: Path, soft_dir: Path | None = None,
                     max_sentences: int | None = None, diagnostics: bool = True) -> dict:
    """Score the teacher like a student (scores, counts, cost) and add the soft-label cache's cost.

    `diagnostics`: also count invalid BIOES transitions on the test sets and compare the
    decodings on dev (each another pass of the teacher; the report does not need them).
    """
    from swener.eval.evaluate import score_model
    from swener.teacher.model import load_teacher

    tagger = load_teacher(teacher_path)
    corpus = corpora.load(corpus_name)
    results = {"model": str(teacher_path), "corpus": corpus_name, "max_sentences": max_sentences,
               "decoding": getattr(tagger, "decoding", "argmax"),
               **score_model(tagger, teacher_path, corpus, max_sentences, EVAL_CORPORA)}
    if diagnostics:
        log.info("counting invalid BIOES transitions in the test predictions")
        results["invalid_bioes"] = {name: invalid_bioes(tagger, corpora.load(name).splits["test"][:max_sentences])
                                    for name in (corpus_name, *EVAL_CORPORA)}
    if diagnostics and hasattr(tagger, "decoding") and not tagger.use_crf:
        log.info("comparing the decodings on dev")
        results["decoding_on_dev"] = compare_decodings(tagger, corpus, max_sentences)
    for name in ("training.json", "learning_curve.json"):
        if (teacher_path.parent / name).is_file():
            results[name.split(".")[0]] = json.loads((teacher_path.parent / name).read_text())
    if soft_dir is not None:
        caches = [softlabels.read(p) for p in sorted(soft_dir.glob("*.npz"))]
        results["soft_labels"] = {"seconds": sum(c.header.get("seconds", 0.0) for c in caches),
                                  "bytes": sum(p.stat().st_size for p in soft_dir.glob("*.npz")),
                                  "tokens": sum(c.header["tokens"] for c in caches)}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, results)
    return results


def add_teacher_kbest(teacher_path: Path, corpus_name: str, soft_dir: Path, splits: list[str],
                      k: int = DEFAULT_KBEST, texts: Sequence[Path] = (), gold: int | None = None) -> list[Path]:
    """Run the teacher over cached sentences and add its k best paths to their caches.

    `splits`: corpus splits (`soft_dir/<split>.npz`); `texts`: transfer texts whose caches
    (`soft_dir/transfer-<name>.npz`, from `swener teacher soft-labels --text`) get them too,
    for KD students with `--kd-target kbest` and a transfer set.
    """
    from flair.data import Sentence

    from swener.kd.kbest import teacher_kbest
    from swener.teacher.model import load_teacher

    if k < 1:
        raise SwenerError(f"--k must be at least 1, got {k}")
    teacher_sha = sha256_of(teacher_path)
    corpus = load_gold(corpus_name, gold)  # `gold`: the split caches hold that gold subset of train
    jobs = []
    for split in splits:  # every cache is checked before the teacher is loaded
        if split not in corpus.splits:
            raise SwenerError(f"{corpus_name} has no split {split!r}")
        path = Path(soft_dir) / f"{split}.npz"
        soft = softlabels.read(path)
        tokens = [s.tokens for s in corpus.splits[split][:soft.header["sentences"]]]
        softlabels.validate(soft, path, tokens, split=split, teacher_sha256=teacher_sha, allow_test=True)
        jobs.append((path, tokens))
    for text in texts:
        path = Path(soft_dir) / f"{transfer_cache_name(text)}.npz"
        soft = softlabels.read(path)
        tokens = read_text_sentences(Path(text), soft.header["sentences"])
        softlabels.validate(soft, path, tokens, split="transfer", teacher_sha256=teacher_sha)
        jobs.append((path, tokens))
    tagger = load_teacher(teacher_path)
    written = []
    for path, tokens in jobs:
        started = time.perf_counter()
        results = []
        for i, result in enumerate(teacher_kbest(tagger, [Sentence(words) for words in tokens], k)):
            results.append(result)
            if (i + 1) % 1000 == 0:
                log.info("%s: the %d best paths of %d/%d sentences", path.name, k, i + 1, len(tokens))
        softlabels.add_kbest(path, [p for p, _ in results], [s for _, s in results], k)
        log.info("added the %d best paths to %s (%.1f s)", k, path, time.perf_counter() - started)
        written.append(path)
    return written
