"""Swedish NER corpora: one registry of sources, checked files, readers, IO -> IOB2, splits.

Every corpus is first read into plain Python (`NERCorpus`: sentences of tokens and IOB2
tags, with notes on what was repaired or dropped), which is quick and needs no Flair;
`to_flair` turns it into a `flair.data.Corpus` with span labels under the type `ner`."""
from __future__ import annotations

import os
import random
import shutil
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from swener.atomic import atomic_path
from swener.config import REPO_ROOT, data_root
from swener.data.readers import READERS, TaggedSentence, read_conll, read_suc_jsonl
from swener.data.tags import spans
from swener.errors import DataError, SwenerError
from swener.files import sha256_of

if TYPE_CHECKING:
    from flair.data import Corpus


CORPORA_DIR = Path(os.environ.get("SWENER_CORPORA", REPO_ROOT / "corpora"))


DEV_FRACTION = 0.1


DEV_SEED = 13


LABEL_TYPE = "ner"


@dataclass(frozen=True)
class SourceFile:
    """One upstream file: its path in the mirror folder, its pinned URL and sha256."""

    mirror_path: str
    url: str
    sha256: str


@dataclass(frozen=True)
class CorpusSource:
    """A registered corpus: where its files come from, how to read them, its licence."""

    name: str
    licence: str
    files: dict[str, SourceFile]
    reader: str
    types: tuple[str, ...]
    description: str


@dataclass
class NERCorpus:
    """Splits of tagged sentences, with notes on what reading repaired or dropped."""

    name: str
    splits: dict[str, list[TaggedSentence]]
    types: tuple[str, ...]
    licence: str = "unknown"
    notes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, split: str, text: str) -> None:
        """Record one repair or observation for a split."""
        self.notes.setdefault(split, []).append(text)


_KLINTAN = "https://raw.githubusercontent.com/klintan/swedish-ner-corpus/87950716635b2bc6971717e6c0656c902a3831e2"


_TALBANKEN = "https://raw.githubusercontent.com/UniversalNER/UNER_Swedish-Talbanken/dbb692085267da83a35d1e1d2c111671b3c7c46b"


_PUD = "https://raw.githubusercontent.com/UniversalNER/UNER_Swedish-PUD/7fed5e267858a295f53083051a16d73c76f60f07"


REGISTRY: dict[str, CorpusSource] = {
    "webbnyheter2012": CorpusSource(
        name="webbnyheter2012",
        licence="CC BY 4.0",
        reader="webbnyheter",
        types=("PER", "LOC", "ORG", "MISC"),
        description="Swedish web news 2012 (the corpus of flair's NER_SWEDISH), IO-tagged",
        files={
            "train": SourceFile("ner/webbnyheter2012/train_corpus.txt", f"{_KLINTAN}/train_corpus.txt",
                                "b0ba93840c13b882a336f5ae3b4af4cc5238203cd504acd5f44d8a7f643abf9f"),
            "test": SourceFile("ner/webbnyheter2012/test_corpus.txt", f"{_KLINTAN}/test_corpus.txt",
                               "b13c8626cf6478df4b3e9a2e7fa5276fd45f757bc5af9f6bc4abc7d789af2fdd"),
        },
    ),
    "uner-talbanken": CorpusSource(
        name="uner-talbanken",
        licence="CC BY-SA 4.0",
        reader="uner",
        types=("PER", "LOC", "ORG"),
        description="Universal NER on the Swedish-Talbanken UD treebank, gold IOB2",
        files={
            split: SourceFile(f"ner/uner-talbanken/sv_talbanken-ud-{split}.iob2",
                              f"{_TALBANKEN}/sv_talbanken-ud-{split}.iob2", sha)
            for split, sha in (
                ("train", "c00a899b47b31ed32f4ac443c70471627f421a2bea654a2261107924b57b97e4"),
                ("dev", "aaa5802d5d6e53b0ed78cc40c5d7aa47fdd2675a88318162fc282dd6895533b1"),
                ("test", "9c6f1013d9d8aaf321454f4c4470fd03c9ddcb0a1e660920b6340d0838fb2653"),
            )
        },
    ),
    "uner-pud": CorpusSource(
        name="uner-pud",
        licence="CC BY-SA 4.0",
        reader="uner",
        types=("PER", "LOC", "ORG"),
        description="Universal NER on the Swedish PUD treebank (translated news/Wikipedia), test only",
        files={
            "test": SourceFile("ner/uner-pud/sv_pud-ud-test.iob2", f"{_PUD}/sv_pud-ud-test.iob2",
                               "c26e233295fd81fb1a283e3a1a5571185b56c4b0c64aa3864e077336e13592bf"),
        },
    ),
}


def atomic_copy(source: Path, target: Path) -> None:
    """Copy a file so that `target` is either absent or complete."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def fetch(source: SourceFile, corpus: str) -> Path:
    """Return the checked local copy of a source file under corpora/, fetching it if needed."""
    target = CORPORA_DIR / corpus / Path(source.mirror_path).name
    if target.is_file() and sha256_of(target) == source.sha256:
        return target
    root = data_root()
    mirrored = root / source.mirror_path if root else None
    if mirrored is not None and mirrored.is_file():
        origin = str(mirrored)
        if sha256_of(mirrored) != source.sha256:
            raise DataError(mirrored, f"sha256 mismatch (expected {source.sha256}); "
                            "the mirror copy is damaged or a different version: restore it")
        atomic_copy(mirrored, target)
    else:
        origin = source.url
        tmp = target.with_name(f".{target.name}.download")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            urllib.request.urlretrieve(source.url, tmp)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            hint = f" or place it at {mirrored}" if mirrored else " or set SWENER_DATA to a mirror folder"
            raise DataError(target, f"missing, and download from {source.url} failed ({err}); "
                            f"connect to the internet{hint}") from None
        if sha256_of(tmp) != source.sha256:
            tmp.unlink(missing_ok=True)
            raise DataError(source.url, f"sha256 mismatch (expected {source.sha256}); upstream changed")
        os.replace(tmp, target)
    if sha256_of(target) != source.sha256:
        raise DataError(target, f"sha256 mismatch after copying from {origin}")
    return target


def entity_types(sentences: Iterable[TaggedSentence]) -> tuple[str, ...]:
    """The entity types that occur in some sentences, sorted."""
    return tuple(sorted({t[2:] for s in sentences for t in s.tags if t != "O"}))


def carve_dev(train: list[TaggedSentence], fraction: float = DEV_FRACTION,
              seed: int = DEV_SEED) -> tuple[list[TaggedSentence], list[TaggedSentence]]:
    """Split a deterministic dev set (a fixed-seed sample of sentences) off a train set."""
    picked = set(random.Random(seed).sample(range(len(train)), round(len(train) * fraction)))
    return ([s for i, s in enumerate(train) if i not in picked],
            [s for i, s in enumerate(train) if i in picked])


def _drop_overlap(test: list[TaggedSentence], seen: list[TaggedSentence], notes: list[str]) -> list[TaggedSentence]:
    """Drop test sentences whose tokens occur in train; report repeats inside test."""
    known = {tuple(s.tokens) for s in seen}
    counts = Counter(tuple(s.tokens) for s in test)
    copies = sum(c - 1 for c in counts.values())
    if copies:
        notes.append(f"{copies} test sentences repeat an earlier test sentence "
                     f"({sum(1 for c in counts.values() if c > 1)} distinct sentences occur more than once); kept")
    kept = [s for s in test if tuple(s.tokens) not in known]
    dropped = [tuple(s.tokens) for s in test if tuple(s.tokens) in known]
    if dropped:
        notes.append(f"dropped {len(dropped)} test sentences ({len(set(dropped))} distinct) that also occur in train")
    return kept


def load(name_or_path: str) -> NERCorpus:
    """Load a registered corpus by name, 'suc3', or a CoNLL file/folder by path."""
    if name_or_path in REGISTRY:
        return _load_registered(REGISTRY[name_or_path])
    if name_or_path == "suc3":
        return load_suc3()
    path = Path(name_or_path)
    if path.exists():
        return load_conll_path(path)
    raise SwenerError(f"{name_or_path}: no such corpus or path; known corpora: "
                      f"{', '.join([*REGISTRY, 'suc3'])}, or give a CoNLL file or folder")


def _load_registered(source: CorpusSource) -> NERCorpus:
    corpus = NERCorpus(source.name, {}, source.types, source.licence)
    for split, file in source.files.items():
        path = fetch(file, source.name)
        notes = corpus.notes.setdefault(split, [])
        corpus.splits[split] = READERS[source.reader](path, notes, source.types)
    if "dev" not in corpus.splits and "train" in corpus.splits:
        corpus.splits["train"], corpus.splits["dev"] = carve_dev(corpus.splits["train"])
        corpus.note("dev", f"carved from train: {DEV_FRACTION:.0%} of sentences, seed {DEV_SEED}")
    if source.reader == "webbnyheter":
        seen = corpus.splits["train"] + corpus.splits["dev"]
        corpus.splits["test"] = _drop_overlap(corpus.splits["test"], seen, corpus.notes.setdefault("test", []))
    corpus.splits = {k: corpus.splits[k] for k in ("train", "dev", "test") if k in corpus.splits}
    return corpus


def load_suc3(folder: str | Path | None = None) -> NERCorpus:
    """Load SUC 3.0 from sucx3_ner JSON lines ({train,dev,test}.jsonl in SWENER_SUC3 or `folder`)."""
    folder = Path(folder or os.environ.get("SWENER_SUC3", CORPORA_DIR / "suc3"))
    corpus = NERCorpus("suc3", {}, ("PER", "LOC", "ORG", "MISC"), "CC BY 4.0")
    for split in ("train", "dev", "test"):
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise DataError(path, "missing; SUC 3.0 cannot be downloaded here: export KBLab's sucx3_ner "
                            "splits as JSON lines and set SWENER_SUC3 to their folder")
        corpus.splits[split] = read_suc_jsonl(path, corpus.notes.setdefault(split, []))
    return corpus


def load_conll_path(path: Path) -> NERCorpus:
    """Load a CoNLL file (all splits = test) or a folder with train/dev/test files."""
    corpus = NERCorpus(path.name, {}, ())
    if path.is_file():
        corpus.splits["test"] = read_conll(path, corpus.notes.setdefault("test", []))
    else:
        for split in ("train", "dev", "test"):
            found = sorted(p for p in path.iterdir() if p.is_file() and p.name.startswith(split))
            if found:
                corpus.splits[split] = read_conll(found[0], corpus.notes.setdefault(split, []))
        if not corpus.splits:
            raise DataError(path, "no train*, dev* or test* file in this folder")
        if "dev" not in corpus.splits and "train" in corpus.splits:
            corpus.splits["train"], corpus.splits["dev"] = carve_dev(corpus.splits["train"])
            corpus.note("dev", f"carved from train: {DEV_FRACTION:.0%} of sentences, seed {DEV_SEED}")
    corpus.types = entity_types(s for split in corpus.splits.values() for s in split)
    return corpus


def stats(corpus: NERCorpus) -> dict:
    """Per split: sentences, tokens, entities per type, and the notes on repairs."""
    out: dict = {"corpus": corpus.name, "licence": corpus.licence, "types": list(corpus.types), "splits": {}}
    for split, sentences in corpus.splits.items():
        per_type = Counter(kind for s in sentences for kind, _, _ in spans(s.tags))
        out["splits"][split] = {
            "sentences": len(sentences),
            "tokens": sum(len(s.tokens) for s in sentences),
            "entities": sum(per_type.values()),
            "entities_per_type": dict(sorted(per_type.items())),
            "notes": corpus.notes.get(split, []),
        }
    return out


def to_flair(corpus: NERCorpus, max_sentences: int | None = None) -> "Corpus":
    """A flair Corpus with span labels under `ner` (optionally the first N sentences of each split)."""
    from flair.data import Corpus

    splits = {name: to_flair_sentences(sents[:max_sentences]) for name, sents in corpus.splits.items()}
    return Corpus(train=splits.get("train"), dev=splits.get("dev"), test=splits.get("test"),
                  name=corpus.name, sample_missing_splits=False)


def to_flair_sentences(sentences: list[TaggedSentence]) -> list:
    """Flair Sentences with gold spans under the label type `ner`."""
    from flair.data import Sentence

    out = []
    for tagged in sentences:
        sentence = Sentence(tagged.tokens)
        for kind, start, end in spans(tagged.tags):
            sentence[start:end].add_label(LABEL_TYPE, kind)
        out.append(sentence)
    return out
