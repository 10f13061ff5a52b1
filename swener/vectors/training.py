"""Training Swedish fastText vectors with gensim (or importing official ones) into an embeddings folder with a
manifest."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

from swener.atomic import atomic_dir, write_json
from swener.vectors.checks import CHECK_SPLITS, intrinsic_check
from swener.vectors.compact import CompactVectors
from swener.vectors.files import (
    EMBEDDINGS_DIR,
    FULL_MODEL_FILE,
    MANIFEST_FILE,
    VECTORS_FILE,
    _compact_summary,
    _versions,
    load_vectors,
)
from swener.vectors.settings import VectorSettings
from swener.vectors.text import text_sources, write_training_text


class _EpochLog:
    """A gensim callback that reports each epoch's time and words per second."""

    def __init__(self, report: Callable[[str], None], words_per_epoch: int, epochs: int) -> None:
        from gensim.models.callbacks import CallbackAny2Vec

        class Callback(CallbackAny2Vec):
            def on_epoch_begin(inner, model: object) -> None:  # noqa: N805
                self.epoch_start = time.time()

            def on_epoch_end(inner, model: object) -> None:  # noqa: N805
                self.epoch += 1
                seconds = time.time() - self.epoch_start
                report(f"epoch {self.epoch}/{epochs}: {seconds:.0f} s, "
                       f"{words_per_epoch / max(seconds, 1e-9):,.0f} words/s")

        self.epoch, self.epoch_start = 0, time.time()
        self.callback = Callback()


def train(settings: VectorSettings, texts: Sequence[str | Path] | None = None, out: str | Path | None = None,
          report: Callable[[str], None] = print,
          check_splits: Sequence[tuple[str, Sequence[str]]] = CHECK_SPLITS, keep_full: bool = False) -> Path:
    """Train fastText on the raw text plus NER training text; write vectors.npz and manifest.json.

    The folder (default embeddings/<settings.name()>) is written as a temporary sibling and
    renamed when complete; tokenised text is cached in a `.cache` folder next to it.
    `keep_full` also saves the whole gensim model (fasttext.model, about 4 * dim * bucket bytes).
    """
    from gensim.models.fasttext import FastText

    started = time.time()
    out = Path(out) if out else EMBEDDINGS_DIR / settings.name()
    sources = text_sources(texts)
    with atomic_dir(out) as tmp:
        text_file = tmp / "train.txt"
        text_info = write_training_text(settings, sources, text_file, out.parent / ".cache", report)
        report(f"training text: {text_info['lines']:,} lines, {text_info['tokens']:,} tokens "
               f"(sample fraction {text_info['sample_fraction']:.3g} of {text_info['raw_text_tokens']:,} raw tokens "
               f"+ NER train {', '.join(settings.ner_train) or 'none'})")
        _enable_gensim_progress()
        model = FastText(vector_size=settings.dim, window=settings.window, min_count=settings.min_count,
                         sg=int(settings.model == "skipgram"), negative=settings.negative,
                         min_n=settings.minn, max_n=settings.maxn, bucket=settings.bucket,
                         workers=settings.workers, seed=settings.seed, epochs=settings.epochs)
        clock = time.time()
        model.build_vocab(corpus_file=str(text_file))
        vocab_seconds = time.time() - clock
        report(f"vocabulary: {len(model.wv.index_to_key):,} words with count >= {settings.min_count} "
               f"({vocab_seconds:.0f} s)")
        epoch_log = _EpochLog(report, model.corpus_total_words, settings.epochs)
        clock, cpu_clock = time.time(), time.process_time()
        trained, raw = model.train(corpus_file=str(text_file), total_words=model.corpus_total_words,
                                   total_examples=model.corpus_count, epochs=settings.epochs,
                                   callbacks=[epoch_log.callback], report_delay=30.0)
        train_seconds, train_cpu_seconds = time.time() - clock, time.process_time() - cpu_clock
        text_file.unlink()
        report(f"trained in {train_seconds:.0f} s ({train_cpu_seconds:.0f} s of CPU): {raw / train_seconds:,.0f} "
               f"words/s ({trained / train_seconds:,.0f} effective words/s after down-sampling)")
        meta = {"name": out.name}
        compact = CompactVectors.from_keyed_vectors(model.wv, settings.max_words, settings.max_ngrams, meta)
        compact.save(tmp / VECTORS_FILE)
        if keep_full:
            model.save(str(tmp / FULL_MODEL_FILE))
        check = intrinsic_check(compact, full=model.wv, splits=check_splits, report=report)
        manifest = {
            "name": out.name,
            "kind": "trained",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "parameters": asdict(settings),
            "sources": sources,
            "training_text": text_info,
            "token_count": text_info["tokens"],
            "vocabulary_size": len(model.wv.index_to_key),
            "compact": _compact_summary(compact, tmp / VECTORS_FILE),
            "seconds": {"vocabulary": round(vocab_seconds, 2), "training": round(train_seconds, 2),
                        "training_cpu": round(train_cpu_seconds, 2), "total": round(time.time() - started, 1),
                        "total_cpu": round(time.process_time(), 1)},
            "words_per_second": round(raw / train_seconds),
            "effective_words_per_second": round(trained / train_seconds),
            "words_trained": {"raw": raw, "effective": trained},
            "intrinsic": check,
            "versions": _versions(),
        }
        write_json(tmp / MANIFEST_FILE, manifest)
    report(f"wrote {out} in {time.time() - started:.0f} s")
    return out


def import_pretrained(path: str | Path, out: str | Path | None = None, max_words: int = 200_000,
                      max_ngrams: int = 200_000, report: Callable[[str], None] = print,
                      check_splits: Sequence[tuple[str, Sequence[str]]] = CHECK_SPLITS) -> Path:
    """Compact an official fastText .bin/.vec file into an embeddings folder with a manifest."""
    started = time.time()
    path = Path(path)
    compact = load_vectors(path, max_words, max_ngrams)
    stem = path.name.split(".vec")[0].split(".bin")[0] or path.stem
    out = Path(out) if out else EMBEDDINGS_DIR / f"pretrained-{stem}-w{max_words // 1000}k-g{max_ngrams // 1000}k"
    compact.meta["name"] = out.name
    if not compact.ngram_ids.size:
        report("note: no n-gram table in this file (a .vec holds whole words only): OOV words get zero vectors")
    with atomic_dir(out) as tmp:
        compact.save(tmp / VECTORS_FILE)
        manifest = {
            "name": out.name,
            "kind": "pretrained",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "sources": [{"path": str(path), "sha256": compact.meta.get("sha256"),
                         "format": compact.meta.get("format")}],
            "parameters": {"max_words": max_words, "max_ngrams": max_ngrams, "dim": compact.dim,
                           "minn": compact.minn, "maxn": compact.maxn, "bucket": compact.bucket},
            "vocabulary_size": compact.meta.get("full_vocabulary"),
            "compact": _compact_summary(compact, tmp / VECTORS_FILE),
            "seconds": {"total": round(time.time() - started, 1)},
            "intrinsic": intrinsic_check(compact, splits=check_splits, report=report),
            "versions": _versions(),
        }
        write_json(tmp / MANIFEST_FILE, manifest)
    report(f"wrote {out}")
    return out


# --------------------------------------------------------------------------- intrinsic check


def _enable_gensim_progress() -> None:
    """Show gensim's INFO lines (vocabulary scan, per-epoch progress with words/s) on stderr."""
    logger = logging.getLogger("gensim")
    if not any(getattr(h, "_swener", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        handler.addFilter(lambda record: "lifecycle event" not in record.getMessage())  # long dict dumps
        handler._swener = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
