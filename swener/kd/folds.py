"""Out-of-fold teacher distributions: what a teacher says about train sentences it never saw.

A teacher fine-tuned on train puts almost all its mass on the gold tag of every train token
(it has learnt them), so KD on train teaches the gold labels again. K fold teachers, teacher
i trained on train without its contiguous block i (`--fold i/K`), each score the block they
held out: the merged train cache holds distributions like those on unseen text. Dev and
transfer texts get the fold teachers' mean distribution (an ensemble). Contiguous blocks keep
an article's sentences, which share names, on one side of the split.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from swener.errors import SwenerError
from swener.kd import softlabels


def parse_fold(text: str) -> tuple[int, int]:
    """'2/3' -> (2, 3): hold out block 2 of 3 (1-based)."""
    try:
        fold, folds = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise SwenerError(f"--fold {text!r}: give I/K, block I (1..K) of K held out, e.g. 1/2") from None
    if folds < 2 or not 1 <= fold <= folds:
        raise SwenerError(f"--fold {text!r}: give I/K with K >= 2 and 1 <= I <= K, e.g. 1/2")
    return fold, folds


def block(n: int, fold: int, folds: int) -> range:
    """The sentence indices of contiguous block `fold` (1-based) of `folds` over n sentences."""
    return range((fold - 1) * n // folds, fold * n // folds)


def training_part(sentences: Sequence, fold: int, folds: int) -> list:
    """The sentences a fold teacher trains on: all but its held-out block."""
    held = block(len(sentences), fold, folds)
    return list(sentences[:held.start]) + list(sentences[held.stop:])


def merge(fold_dirs: Sequence[Path], out: Path, held_out: bool = True) -> list[Path]:
    """Join K fold teachers' caches into one cache folder that students read like a teacher's.

    `fold_dirs`: the soft-label folders of the K fold teachers (`swener teacher soft-labels`,
    each header naming its teacher's fold). train.npz: block i from the teacher that held it
    out (`held_out`), or, as a control, from a teacher that trained on it (teacher i + 1), with
    that teacher's k best paths when every fold teacher's train cache has them.
    Every other cache file present in all folders (dev, transfer sets): the mean of the K
    distributions. The merged header's teacher is the set of fold teachers.
    """
    caches = {}
    for directory in fold_dirs:
        soft = softlabels.read(Path(directory) / "train.npz")
        fold = soft.header.get("fold")
        if not fold:
            raise SwenerError(f"{directory}/train.npz: not written by a fold teacher (no fold in its header); "
                              "train one with `swener teacher train --fold I/K`, then write its soft labels")
        if fold.get("train_sentences") != len(soft):
            raise SwenerError(f"{directory}/train.npz: its teacher's blocks are of {fold.get('train_sentences')} train "
                              f"sentences but the cache holds {len(soft)}: write it with the --max-sentences the "
                              "fold teacher was trained with")
        if fold["fold"] in caches:
            raise SwenerError(f"{directory}: a second teacher of fold {fold['fold']}/{fold['folds']}")
        caches[fold["fold"]] = (Path(directory), soft, fold["folds"])
    folds = {k for _, _, k in caches.values()}
    if len(folds) != 1 or sorted(caches) != list(range(1, next(iter(folds)) + 1)):
        raise SwenerError(f"fold teachers {sorted(caches)} of {sorted(folds)} folds: give one teacher for each "
                          "fold 1..K of one K")
    k = folds.pop()
    order = [caches[i] for i in range(1, k + 1)]
    shas = [soft.header["teacher_sha256"] for _, soft, _ in order]
    sha = hashlib.sha256(("out-of-fold" if held_out else "in-fold").encode() + "".join(shas).encode()).hexdigest()
    record = {"folds": k, "held_out": held_out, "teachers": shas, "dirs": [str(d) for d, _, _ in order]}
    out = Path(out)
    names = set.intersection(*({p.name for p in d.glob("*.npz")} for d, _, _ in order)) - {"train.npz"}
    written = [_mean([softlabels.read(d / name) for d, _, _ in order], out / name, sha, record)
               for name in sorted(names)]
    # train.npz last: it is what Make and the students look for, so it marks a finished merge
    return written + [_merge_train([soft for _, soft, _ in order], out / "train.npz", sha, record, held_out)]


def _check_same(caches: Sequence[softlabels.SoftLabels]) -> None:
    """The caches hold the same sentences and tags."""
    first = caches[0].header
    for soft in caches[1:]:
        for key in ("tokens_sha256", "tags", "split"):
            if soft.header[key] != first[key]:
                raise SwenerError(f"the fold teachers' {first['split']} caches differ in {key}: write them all "
                                  "from the same corpus (or text) and --max-sentences")


def _merge_train(caches: list[softlabels.SoftLabels], path: Path, sha: str, record: dict, held_out: bool) -> Path:
    """train.npz: each sentence's distribution from the teacher that held out (or trained on) its block."""
    _check_same(caches)
    k, n = len(caches), len(caches[0])
    sources = [(f if held_out else f % k + 1) - 1 for f in range(1, k + 1) for _ in block(n, f, k)]
    rows = [caches[source].sentence(i).astype(np.float32) for i, source in enumerate(sources)]
    ks = {c.header.get("kbest") for c in caches}
    kbest = None
    if len(ks) == 1 and None not in ks:  # every fold teacher's k best paths: take them from the same teacher
        picked = [caches[source].sentence_kbest(i) for i, source in enumerate(sources)]
        kbest = ([p for p, _ in picked], [s for _, s in picked], int(ks.pop()))
    return _write(caches[0], rows, path, sha, record, _seconds(caches), kbest)


def _seconds(caches: Sequence[softlabels.SoftLabels]) -> float:
    """The teacher time of the caches merged (what the merged cache cost)."""
    return float(sum(c.header.get("seconds", 0.0) for c in caches))


def _mean(caches: list[softlabels.SoftLabels], path: Path, sha: str, record: dict) -> Path:
    """A cache of the fold teachers' mean probabilities."""
    _check_same(caches)
    with np.errstate(divide="ignore"):
        mean = np.log(np.mean([np.exp(c.logp.astype(np.float64)) for c in caches], axis=0))
    first = caches[0]
    rows = [mean[first.offsets[i]:first.offsets[i + 1]] for i in range(len(first))]
    return _write(first, rows, path, sha, record, _seconds(caches))


def _write(like: softlabels.SoftLabels, rows: list[np.ndarray], path: Path, sha: str, record: dict,
           seconds: float, kbest: tuple | None = None) -> Path:
    """Write `rows` for the sentences of `like` (its checksum and counts), under the merged teacher."""
    header = like.header
    path.parent.mkdir(parents=True, exist_ok=True)
    return softlabels.write(path, rows, tags=header["tags"], lengths=np.diff(like.offsets),
                            tokens_sha256=header["tokens_sha256"], teacher_sha256=sha, corpus=header["corpus"],
                            split=header["split"], kbest=kbest, extra={"max_sentences": header.get("max_sentences"),
                                                          "seconds": seconds, "out_of_fold": record})
