"""Scoring a Flair tagger on a corpus split, and measuring its cost (speed, size, memory)."""
from __future__ import annotations

import logging
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from swener.data import corpora
from swener.data.corpora import TaggedSentence
from swener.data.tags import bioes_spans, flair_iob2, iob2_of_spans
from swener.eval.scoring import Score, error_breakdown, f1_from_counts, score, sentence_counts

if TYPE_CHECKING:
    from flair.models import SequenceTagger

log = logging.getLogger("swener")

def predict_tags(tagger: SequenceTagger, sentences: list[TaggedSentence], batch_size: int = 32) -> list[list[str]]:
    """Tag gold-tokenised sentences with a flair tagger (or an exported one); returns IOB2 tags."""
    if not hasattr(tagger, "predict"):  # an exported tagger (swener.serve.onnx): tag_tokens only

        tagged = tagger.tag_tokens([s.tokens for s in sentences], batch_size)
        return [iob2_of_spans(len(s.tokens), [(a, b, kind) for a, b, kind, _ in bioes_spans(tags, scores)])
                for s, (tags, scores) in zip(sentences, tagged)]
    from flair.data import Sentence

    flair_sentences = [Sentence(s.tokens) for s in sentences]
    tagger.predict(flair_sentences, mini_batch_size=batch_size, label_name=corpora.LABEL_TYPE)
    return [flair_iob2(fs, len(s.tokens)) for fs, s in zip(flair_sentences, sentences)]


def evaluate(tagger: SequenceTagger, corpus: corpora.NERCorpus, split: str = "test", batch_size: int = 32,
             max_sentences: int | None = None) -> tuple[Score, list[list[str]]]:
    """Strict IOB2 scores of a tagger on a corpus split; types the corpus lacks are mapped to O."""
    sentences = corpus.splits[split][:max_sentences]
    predicted = predict_tags(tagger, sentences, batch_size)
    return score([s.tags for s in sentences], predicted, types=set(corpus.types)), predicted


@dataclass
class Cost:
    """What a model costs to run on this machine."""

    tokens_per_second: float
    latency_ms: float
    parameters: int
    parameters_without_embeddings: int
    size_bytes: int
    peak_rss_mb: float


def count_parameters(tagger: SequenceTagger) -> tuple[int, int]:
    """All parameters (with fixed vector tables), and those outside the embedding tables.

    Embedding tables are the fastText vectors (buffers) and every `nn.Embedding` (a
    transformer's vocabulary and position tables); a transformer's layers count as model.
    """
    import torch

    total = sum(p.numel() for p in tagger.parameters())
    tables = sum(p.numel() for m in tagger.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    buffers = sum(b.numel() for b in tagger.embeddings.buffers())
    return total + buffers, total - tables


def measure_cost(tagger: SequenceTagger, model_path: Path, sentences: list[TaggedSentence], batch_size: int = 32,
                 repeats: int = 3, enough_seconds: float = 20.0) -> Cost:
    """End-to-end predict() throughput and one-sentence latency.

    Throughput is the median of up to `repeats` passes after a warm-up, stopping once the
    passes took `enough_seconds` (a teacher's single 40-second pass varies less than a
    student's three 1-second ones).
    """
    from flair.data import Sentence

    def run(batch: list[TaggedSentence], size: int) -> float:
        flair_sentences = [Sentence(s.tokens) for s in batch]
        started = time.perf_counter()
        tagger.predict(flair_sentences, mini_batch_size=size)
        return time.perf_counter() - started

    tokens = sum(len(s.tokens) for s in sentences)
    run(sentences[: max(batch_size, 64)], batch_size)  # warm-up
    passes: list[float] = []
    while len(passes) < repeats and sum(passes) < enough_seconds:
        passes.append(run(sentences, batch_size))
    seconds = statistics.median(passes)
    one = [sentences[min(range(len(sentences)), key=lambda i: abs(len(sentences[i].tokens) - 20))]]
    latency = statistics.median(run(one, 1) for _ in range(10))
    total, without = count_parameters(tagger)
    return Cost(tokens / seconds, latency * 1000, total, without, Path(model_path).stat().st_size,
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def oov_entity_score(gold: list[list[str]], pred: list[list[str]], tokens: list[list[str]],
                     is_known: Callable[[str], bool], types: set[str] | None = None) -> dict:
    """Strict F1 on the entities (gold and predicted) that contain a word the embeddings do not know."""
    def has_oov(sentence: int, start: int, end: int) -> bool:
        return not all(is_known(t) for t in tokens[sentence][start:end])

    counts = sentence_counts(gold, pred, keep=has_oov, types=types).sum(axis=0)
    tp, predicted, gold_n = (int(c) for c in counts)
    return {"f1": float(f1_from_counts(counts[None])), "true_positives": tp, "predicted": predicted, "gold": gold_n}


def score_model(tagger: SequenceTagger, model_path: Path, corpus: corpora.NERCorpus, max_sentences: int | None,
                eval_corpora: Sequence[str], dev_only: bool = False) -> dict:
    """Dev and test scores, out-of-domain test scores, per-sentence counts (for the bootstrap) and cost.

    `dev_only` (sweeps, which choose settings): dev scores and cost on dev text; no test set is read.
    """
    out: dict = {"scores": {}, "counts": {}, "errors": {}}
    is_known = getattr(tagger.embeddings, "is_known", None)
    if is_known is not None:
        out["oov_entities"] = {}
    test_sets = [(corpus.name, "dev", corpus)]
    if not dev_only:
        test_sets.append((corpus.name, "test", corpus))
        test_sets += [(name, "test", corpora.load(name)) for name in eval_corpora if name != corpus.name]
    for name, split, data in test_sets:
        if split not in data.splits:
            continue
        started = time.perf_counter()
        result, predicted = evaluate(tagger, data, split, max_sentences=max_sentences)
        out["scores"][f"{name}/{split}"] = result.as_dict()
        log.info("%s/%s: micro F1 %.4f (%d sentences, %.1f s)", name, split, result.micro_f1, len(predicted),
                 time.perf_counter() - started)
        if split == "test":
            gold = [s.tags for s in data.splits[split][:max_sentences]]
            out["counts"][f"{name}/{split}"] = sentence_counts(gold, predicted, types=set(data.types)).tolist()
            out["errors"][f"{name}/{split}"] = error_breakdown(gold, predicted, set(data.types))
            if is_known is not None:
                tokens = [s.tokens for s in data.splits[split][:max_sentences]]
                out["oov_entities"][f"{name}/{split}"] = oov_entity_score(gold, predicted, tokens, is_known,
                                                                               set(data.types))
    log.info("measuring the cost (speed, size)")
    out["cost"] = asdict(measure_cost(tagger, model_path, corpus.splits["dev" if dev_only else "test"][:max_sentences]))
    return out
