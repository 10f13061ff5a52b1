"""Entity-dense transfer sets: the cached transfer sentences in which the teacher finds names.

Most sentences of raw text hold no name, so a transfer set taken in text order mostly
teaches O. `select_dense` keeps, from one or more cached transfer texts of one teacher, the
sentences whose teacher distributions predict at least `min_entities` entities (a B- or S-
tag most probable at a token), in the order of the sources, and writes them as a transfer
text of their own (one sentence a line, its tokens separated by spaces) beside a cache of
their distributions and k best paths, which students read like any other transfer set
(`swener train --transfer DIR/NAME.txt.gz`).
"""
from __future__ import annotations

import gzip
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from swener.atomic import atomic_path
from swener.errors import SwenerError
from swener.kd import softlabels

log = logging.getLogger("swener")


def entity_starts(soft: softlabels.SoftLabels) -> np.ndarray:
    """Per sentence, the tokens whose most probable teacher tag starts an entity (B- or S-)."""
    starts = np.array([tag[:2] in ("B-", "S-") for tag in soft.tags])
    per_token = starts[np.argmax(soft.logp, axis=1)].astype(np.int64)
    return np.add.reduceat(per_token, soft.offsets[:-1]) if len(per_token) else np.zeros(len(soft), np.int64)


def round_trips(tokens: Sequence[str]) -> bool:
    """Whether a sentence written as one line of space-separated tokens reads back as itself."""
    from swener.data.tokenizer import split_sentences

    back = split_sentences(" ".join(tokens))
    return len(back) == 1 and [t.text for t in back[0]] == list(tokens)


def select_dense(soft_dir: Path, texts: Sequence[Path], name: str, min_entities: int = 1,
                 sentences: int | None = None) -> tuple[Path, Path, dict]:
    """Write `soft_dir/NAME.txt.gz` and its cache `soft_dir/transfer-NAME.npz`; returns both and a summary.

    `texts`: transfer texts whose caches (`swener teacher soft-labels --text`) are in
    `soft_dir`, all from one teacher; `sentences`: keep at most the first N chosen.
    """
    from swener.teacher.run import read_text_sentences, transfer_cache_name

    if "." in name or "/" in name or not name:
        raise SwenerError(f"--name {name!r}: give a plain name (no dots or slashes), e.g. almedalen-dense")
    chosen_tokens: list[list[str]] = []
    chosen_logp: list[np.ndarray] = []
    chosen_kbest: list[tuple[np.ndarray, np.ndarray]] = []
    chosen_counts: list[int] = []
    header: dict | None = None
    pool, sources = 0, []
    for text in texts:
        path = soft_dir / f"{transfer_cache_name(text)}.npz"
        soft = softlabels.read(path)
        tokens = read_text_sentences(Path(text), soft.header["sentences"])
        softlabels.validate(soft, path, tokens, split="transfer",
                            teacher_sha256=header["teacher_sha256"] if header else None)
        if header is not None and soft.tags != header["tags"]:
            raise SwenerError(f"{path}: tags differ from {sources[0]['cache']}'s; write both with one teacher")
        header = header or soft.header
        counts = entity_starts(soft)
        with_entities = int((counts >= min_entities).sum())
        kept = skipped = 0
        for i in np.flatnonzero(counts >= min_entities):
            if sentences is not None and len(chosen_tokens) >= sentences:
                break
            if not round_trips(tokens[i]):
                skipped += 1
                continue
            chosen_tokens.append(tokens[i])
            chosen_logp.append(soft.sentence(i).astype(np.float32))
            chosen_counts.append(int(counts[i]))
            if soft.kbest_paths is not None:
                chosen_kbest.append(soft.sentence_kbest(i))
            kept += 1
        pool += len(soft)
        sources.append({"text": str(text), "cache": str(path), "sentences": len(soft), "chosen": kept,
                        "with_entities": with_entities, "not_round_tripping": skipped})
        log.info("%s: %d of %d cached sentences with >= %d predicted entities, %d taken", Path(text).name,
                 with_entities, len(soft), min_entities, kept)
    if header is None or not chosen_tokens:
        raise SwenerError(f"no cached sentence of {', '.join(map(str, texts))} has {min_entities} predicted "
                          "entities; cache more text (`swener teacher soft-labels --text`) or lower --min-entities")
    out_text = soft_dir / f"{name}.txt.gz"
    summary = {"min_entities": min_entities, "pool_sentences": pool, "sentences": len(chosen_tokens),
               "entities_per_sentence": float(np.mean(chosen_counts)), "sources": sources}
    kbest = None
    if len(chosen_kbest) == len(chosen_tokens):
        kbest = ([p for p, _ in chosen_kbest], [s for _, s in chosen_kbest], int(header["kbest"]))
    cache = softlabels.write(soft_dir / f"{transfer_cache_name(out_text)}.npz", chosen_logp, tags=header["tags"],
                             tokens=chosen_tokens, teacher_sha256=header["teacher_sha256"],
                             corpus=f"text:{out_text.name}", split="transfer", kbest=kbest,
                             extra={"teacher_path": header.get("teacher_path"), "selection": summary})
    # the text last: where it exists, so does its whole cache
    with atomic_path(out_text, suffix=".txt.gz") as tmp, gzip.open(tmp, "wt", encoding="utf-8") as handle:
        handle.writelines(" ".join(words) + "\n" for words in chosen_tokens)
    return out_text, cache, summary
