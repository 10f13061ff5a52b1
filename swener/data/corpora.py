"""Swedish NER corpora: one registry of sources, checked files, readers, IO -> IOB2, splits.

Every corpus is first read into plain Python (`NERCorpus`: sentences of tokens and IOB2
tags, with notes on what was repaired or dropped), which is quick and needs no Flair;
`to_flair` turns it into a `flair.data.Corpus` with span labels under the type `ner`.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from swener.atomic import atomic_path
from swener.config import REPO_ROOT
from swener.data.tags import io_to_iob2, repair_iob2, spans
from swener.errors import DataError, SwenerError

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
class TaggedSentence:
    """A sentence as tokens and IOB2 tags."""

    tokens: list[str]
    tags: list[str]


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

# SUC 3.0 as KBLab's sucx3_ner conversion (JSON lines with "tokens" and "ner_tags"), which
# cannot be downloaded here: the user points SWENER_SUC3 at a folder holding
# {train,dev,test}.jsonl. Tag names map to the paper's four types; time and measure
# expressions are not named entities in the paper and become O. Tags come prefixed (B-PRS)
# or as bare IO types (PRS), and compound metonymy types (LOCPRS) take their first type.
SUC_TYPE_MAP: dict[str, str | None] = {
    "person": "PER", "prs": "PER", "per": "PER", "animal": "PER", "myth": "PER",
    "place": "LOC", "loc": "LOC",
    "inst": "ORG", "org": "ORG",
    "product": "MISC", "obj": "MISC", "work": "MISC", "wrk": "MISC", "event": "MISC",
    "evn": "MISC", "other": "MISC", "misc": "MISC",
    "tme": None, "msr": None, "time": None, "measure": None,
}


def data_root() -> Path | None:
    """The local mirror of the upstream files, if there is one (SWENER_DATA or ../shared/data)."""
    env = os.environ.get("SWENER_DATA")
    if env:
        return Path(env)
    for candidate in (REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return None


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a UTF-8 file; a bad byte is a DataError naming the line."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise DataError(path, f"not UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1}); "
                                "convert the file to UTF-8", line=number) from None


def _blocks(path: Path) -> Iterator[list[tuple[int, str]]]:
    """Blank-line separated blocks of (line number, line), without '#' comment lines."""
    block: list[tuple[int, str]] = []
    for number, line in _lines(path):
        if not line.strip():
            if block:
                yield block
            block = []
        elif not line.startswith("#"):
            block.append((number, line))
    if block:
        yield block


def _check_tag(tag: str, types: Iterable[str], path: Path, line: int) -> None:
    allowed = set(types)
    if tag != "O" and not (tag[:2] in ("B-", "I-") and tag[2:] in allowed):
        raise DataError(path, f"unknown tag {tag!r} (expected O or B-/I- with one of {sorted(allowed)})", line)


# Lines known to hold a token without a tag: (file name, line number). They are dropped.
WEBBNYHETER_LONE_TOKENS = {("train_corpus.txt", 90310)}
WEBBNYHETER_TAGS = {"0": None, "O": None, "PER": "PER", "LOC": "LOC", "ORG": "ORG", "MISC": "MISC"}


def read_webbnyheter(path: Path, notes: list[str]) -> list[TaggedSentence]:
    """Read a Webbnyheter 2012 file: `token tag` split by tab or spaces, IO tags, `0` = O."""
    sentences, tab_lines, space_lines = [], 0, 0
    for block in _blocks(path):
        tokens, kinds = [], []
        for number, line in block:
            fields = line.split()
            if "\t" in line:
                tab_lines += 1
            else:
                space_lines += 1
            if len(fields) == 1 and (path.name, number) in WEBBNYHETER_LONE_TOKENS:
                notes.append(f"line {number}: dropped the lone token {fields[0]!r} (no tag)")
                continue
            if len(fields) != 2:
                raise DataError(path, f"expected 2 columns (token tag), found {len(fields)}; fix the line", number)
            token, tag = fields
            if tag not in WEBBNYHETER_TAGS:
                raise DataError(path, f"unknown tag {tag!r} (expected one of {sorted(WEBBNYHETER_TAGS)})", number)
            tokens.append(token)
            kinds.append(WEBBNYHETER_TAGS[tag])
        if tokens:
            sentences.append(TaggedSentence(tokens, io_to_iob2(kinds)))
    if tab_lines and space_lines:
        notes.append(f"mixed separators: {tab_lines} lines tab-separated, {space_lines} space-separated")
    notes.append("IO tags (outside written 0) converted to IOB2: each run of one type is one entity; "
                 "two adjacent entities of one type cannot be told apart")
    return sentences


def read_uner(path: Path, types: Iterable[str], notes: list[str]) -> list[TaggedSentence]:
    """Read a UNER .iob2 file: tab-separated `index token tag - -`, '#' comments."""
    sentences, repairs = [], 0
    for block in _blocks(path):
        tokens, tags = [], []
        for number, line in block:
            fields = line.split("\t")
            if len(fields) != 5:
                raise DataError(path, f"expected 5 tab-separated columns (index token tag - -), "
                                f"found {len(fields)}; fix the line", number)
            tag = fields[2]
            _check_tag(tag, types, path, number)
            tokens.append(fields[1])
            tags.append(tag)
        tags, fixed = repair_iob2(tags)
        repairs += fixed
        sentences.append(TaggedSentence(tokens, tags))
    if repairs:
        notes.append(f"{repairs} entities started with I- and were repaired to B-")
    return sentences


def resolve_suc_type(kind: str) -> tuple[str, bool] | None:
    """The SUC_TYPE_MAP key of a type name, and whether it was a compound; None if unknown.

    A compound metonymy type (LOCPRS, ORGPRS, LOCORG: a name of the first type used as the
    second) takes the name's own type, the first of the pair: LOCPRS -> LOC.
    """
    key = kind.lower()
    if key in SUC_TYPE_MAP:
        return key, False
    for cut in range(1, len(key)):
        if key[:cut] in SUC_TYPE_MAP and key[cut:] in SUC_TYPE_MAP:
            return key[:cut], True
    return None


def parse_suc_tag(tag: str, path: Path, line: int) -> tuple[str | None, str | None, bool]:
    """(prefix "B"/"I", or None for a bare IO tag; SUC_TYPE_MAP key, None for O; compound?) of one tag."""
    if tag == "O":
        return None, None, False
    prefix, dash, kind = tag.partition("-")
    if not (dash and prefix in ("B", "I")):
        prefix, kind = None, tag
    found = resolve_suc_type(kind)
    if found is None:
        raise DataError(path, f"unknown SUC tag {tag!r} (expected O, a type, B-/I- and a type, or a compound of two "
                        f"types such as LOCPRS; known types: {', '.join(sorted(SUC_TYPE_MAP))})", line)
    return prefix, found[0], found[1]


def suc_to_iob2(raw_tags: list[str], path: Path, line: int, seen: Counter) -> list[str]:
    """One sentence's sucx3_ner tags (prefixed or bare IO, compounds allowed) as paper IOB2 tags.

    A bare tag continues the entity of the token before when it is the same tag, else starts
    one: a maximal run of one type is one entity. `seen` counts dropped entities ("dropped:TME"),
    compound entities ("compound:LOCPRS") and tokens with bare tags ("bare").
    """
    tags, previous = [], None
    for raw in raw_tags:
        prefix, key, compound = parse_suc_tag(raw, path, line)
        kind = raw if prefix is None else raw[2:]
        if key is None:
            tags.append("O")
            previous = None
            continue
        if prefix is None:
            seen["bare"] += 1
            prefix = "I" if kind == previous else "B"
        previous = kind
        if prefix == "B" and compound:
            seen[f"compound:{kind}"] += 1
        mapped = SUC_TYPE_MAP[key]
        if mapped is None:
            seen[f"dropped:{kind}"] += prefix == "B"
            tags.append("O")
        else:
            tags.append(f"{prefix}-{mapped}")
    return tags


def read_suc_jsonl(path: Path, notes: list[str]) -> list[TaggedSentence]:
    """Read KBLab's sucx3_ner JSON lines (`tokens`, `ner_tags`) with the paper's type mapping.

    Tags may be prefixed (B-PRS, I-PRS) or bare IO types (PRS) as published; compound
    metonymy types (LOCPRS ...) map to their first type.
    """
    sentences, seen, repairs = [], Counter(), 0
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            tokens, raw_tags = list(record["tokens"]), list(record["ner_tags"])
        except (ValueError, KeyError, TypeError):
            raise DataError(path, "expected a JSON object with lists 'tokens' and 'ner_tags'", number) from None
        if len(tokens) != len(raw_tags):
            raise DataError(path, f"{len(tokens)} tokens but {len(raw_tags)} tags", number)
        tags, fixed = repair_iob2(suc_to_iob2([str(raw) for raw in raw_tags], path, number, seen))
        repairs += fixed
        sentences.append(TaggedSentence(tokens, tags))
    dropped = {k.split(":", 1)[1]: v for k, v in sorted(seen.items()) if k.startswith("dropped:") and v}
    compounds = {k.split(":", 1)[1]: v for k, v in sorted(seen.items()) if k.startswith("compound:")}
    if dropped:
        notes.append("dropped entity types (not in the paper's PER/LOC/ORG/MISC): "
                     + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    if compounds:
        notes.append("compound (metonymy) types mapped to their first type, the name's own: "
                     + ", ".join(f"{k} {v}" for k, v in compounds.items()))
    if seen["bare"]:
        notes.append(f"{seen['bare']} tokens with bare IO tags: each maximal run of one tag is one entity; "
                     "two adjacent entities of one type cannot be told apart")
    if repairs:
        notes.append(f"{repairs} entities started with I- and were repaired to B-")
    return sentences


def read_conll(path: Path, notes: list[str]) -> list[TaggedSentence]:
    """Read a CoNLL column file: first column token, last column tag (IOB1/IOB2/BIOES or bare IO types)."""
    sentences = []
    for block in _blocks(path):
        tokens, tags = [], []
        for number, line in block:
            fields = line.split("\t") if "\t" in line else line.split()
            if len(fields) < 2:
                raise DataError(path, f"expected at least 2 columns (token ... tag), found {len(fields)}", number)
            tag = fields[-1]
            if tag in ("0", "O"):
                tag = "O"
            elif tag[:2] in ("B-", "I-", "E-", "S-"):
                tag = {"E": "I", "S": "B"}.get(tag[0], tag[0]) + tag[1:]
            elif tag.isidentifier():
                tag = f"I-{tag}"  # bare IO type: runs become entities below
            else:
                raise DataError(path, f"unknown tag {tag!r}", number)
            tokens.append(fields[0])
            tags.append(tag)
        tags, _ = repair_iob2(tags)
        sentences.append(TaggedSentence(tokens, tags))
    return sentences


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
        if source.reader == "webbnyheter":
            corpus.splits[split] = read_webbnyheter(path, notes)
        else:
            corpus.splits[split] = read_uner(path, source.types, notes)
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
