"""Intrinsic checks of compact vectors: coverage of the NER splits, neighbours of probe words, subword fidelity."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from swener.data import corpora
from swener.errors import SwenerError
from swener.vectors.compact import CompactVectors, case_variants, embedding_key

PROBES: tuple[str, ...] = ("Stockholm", "Sverige", "kung", "måndag", "Volvo", "Göteborg", "regeringen")


CHECK_SPLITS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("webbnyheter2012", ("train", "dev", "test")),
    ("uner-talbanken", ("train", "dev", "test")),
    ("uner-pud", ("test",)),
)


def intrinsic_check(compact: CompactVectors, full: Any = None, probes: Sequence[str] = PROBES,
                    splits: Sequence[tuple[str, Sequence[str]]] = CHECK_SPLITS,
                    report: Callable[[str], None] = print) -> dict:
    """OOV rates per corpus split, nearest neighbours of the probe words, subword fidelity.

    OOV rates are over running tokens: `oov` = not in the compact vocabulary (after the case
    fallbacks), `no_vector` = OOV and no kept n-gram either (a zero vector), `oov_full_vocab`
    = not in the full trained vocabulary. With `full` (gensim FastTextKeyedVectors), also the
    mean cosine between the compact OOV vector and gensim's own vector for the same word.
    """
    oov: dict[str, dict] = {}
    fidelity_words: set[str] = set()
    for name, names in splits:
        try:
            corpus = corpora.load(name)
        except SwenerError as err:
            report(f"skipping {name} in the OOV check: {err}")
            continue
        for split in names:
            tokens = [t for s in corpus.splits.get(split, []) for t in s.tokens]
            if not tokens:
                continue
            types = set(tokens)
            unknown = {t for t in types if compact.find(t) is None}
            no_vector = {t for t in unknown if not compact.subword_rows(t)}
            row = {
                "tokens": len(tokens),
                "oov": round(sum(t in unknown for t in tokens) / len(tokens), 4),
                "oov_types": round(len(unknown) / len(types), 4),
                "no_vector": round(sum(t in no_vector for t in tokens) / len(tokens), 4),
            }
            if full is not None:
                known_full = full.key_to_index
                row["oov_full_vocab"] = round(sum(
                    not any(f in known_full for f in case_variants(embedding_key(t))) for t in tokens
                ) / len(tokens), 4)
            oov[f"{name}/{split}"] = row
            if name == "webbnyheter2012" and split == "dev":
                fidelity_words = unknown
    neighbours = {}
    for probe in probes:
        known = compact.find(probe) is not None
        neighbours[probe] = {"known": known, "nearest": compact.nearest(probe, 8)}
    check: dict[str, Any] = {"oov": oov, "neighbours": neighbours}
    if full is not None and fidelity_words:
        check["subword_fidelity"] = subword_fidelity(compact, full, sorted(fidelity_words))
    report("OOV rate per split (tokens; oov = not in vocabulary, no_vector = not even an n-gram):")
    for key, row in oov.items():
        extra = f", full vocabulary {row['oov_full_vocab']:.2%}" if "oov_full_vocab" in row else ""
        report(f"  {key:24s} {row['tokens']:7d} tokens  oov {row['oov']:.2%}  types {row['oov_types']:.2%}  "
               f"no_vector {row['no_vector']:.2%}{extra}")
    report("nearest neighbours:")
    for probe, row in neighbours.items():
        words = ", ".join(f"{w} {s:.2f}" for w, s in row["nearest"])
        report(f"  {probe}{'' if row['known'] else ' (OOV)'}: {words}")
    if "subword_fidelity" in check:
        fid = check["subword_fidelity"]
        report(f"subword fidelity on webbnyheter2012/dev OOV words ({fid['words']}): mean centred cosine "
               f"{fid['mean_centred_cosine']:.3f} with the full n-gram table (10th percentile "
               f"{fid['p10_centred_cosine']:.3f})")
    return check


def subword_fidelity(compact: CompactVectors, full: Any, words: Sequence[str]) -> dict:
    """How well the pruned n-gram table reproduces the full model's vectors for OOV words.

    The cosine is taken after subtracting the mean vocabulary vector: fastText vectors share
    a large common direction, so plain cosines are all close to 1 and say little.
    """
    centre = compact.vectors.astype(np.float32).mean(axis=0)
    cosines = []
    for word in words:
        ours = compact.vector(word) - centre
        theirs = np.asarray(full.get_vector(embedding_key(word)), dtype=np.float32) - centre
        denominator = float(np.linalg.norm(ours) * np.linalg.norm(theirs))
        cosines.append(float(ours @ theirs) / denominator if denominator else 0.0)
    return {"words": len(words), "mean_centred_cosine": round(float(np.mean(cosines)), 4),
            "p10_centred_cosine": round(float(np.percentile(cosines, 10)), 4)}


# --------------------------------------------------------------------------- helpers
