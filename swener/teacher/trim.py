"""Vocabulary trimming of a SentencePiece-Unigram backbone (XLM-R family, e.g. e5-small).

e5-small's embedding table holds one row for each of 250k multilingual pieces: 96 M of its
118 M parameters. Swedish text uses a small share of them. `trim` writes a normal Hugging
Face folder whose tokenizer and embedding table keep only

- the pieces that occur when the shared Swedish raw text (but a held-back slice of it) and
  the NER corpora's *train* splits are tokenised,
- every piece made only of Latin-script letters, digits, punctuation and symbols (foreign
  names in Latin script, arrows and dingbats keep their segmentation), and
- all special tokens,

as in Abdaoui et al. 2020 ("Load What You Need") and Ushio et al. 2023. Dev and test text
and the held-back slice never choose pieces; they are what the check measures.

A Unigram tokenizer finds the most probable segmentation over its pieces; over a subset that
still contains every piece of the original best path, that path stays the best, so the
segmentation is identical. A text needing a dropped piece is segmented differently, never
wrongly (worst case `<unk>` for a character no kept piece covers).
"""
from __future__ import annotations

import copy
import json
import logging
import time
import unicodedata
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from swener.batching import batched
from swener.errors import SwenerError
from swener.files import open_text

log = logging.getLogger("swener")
Log = Callable[[str], None]

HOLDOUT_EVERY = 100  # every 100th line of each raw text file is held back for the check
CHECK_LINES = 5000  # held-back lines tokenised by the check
CHECK_SPLITS = (("webbnyheter2012", "train"), ("webbnyheter2012", "dev"), ("webbnyheter2012", "test"),
                ("uner-pud", "test"), ("uner-talbanken", "test"))
TRAIN_CORPORA = ("webbnyheter2012", "uner-talbanken")
METASPACE = "\u2581"


def latin_piece(piece: str) -> bool:
    """True for a piece made only of Latin-script letters, digits, punctuation, symbols (and the word mark)."""
    text = piece.replace(METASPACE, "")
    if not text:
        return True
    for char in text:
        category = unicodedata.category(char)
        if category[0] in "NPS":
            continue
        if category[0] == "L" and unicodedata.name(char, "").startswith("LATIN"):
            continue
        return False
    return True


def raw_lines(paths: Sequence[Path], held_back: bool) -> Iterator[str]:
    """Lines of raw text files: all but every HOLDOUT_EVERY-th (or, if `held_back`, only those)."""
    for path in paths:
        with open_text(path) as handle:
            for i, line in enumerate(handle):
                if (i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1) == held_back and line.strip():
                    yield line.rstrip("\n")


def pieces_used(tokenizer, texts: Iterable[str], batch: int = 2000, log: Log = log.info) -> set[int]:
    """Ids of the pieces that tokenising `texts` produces (a `tokenizers.Tokenizer`)."""
    used: set[int] = set()
    started, lines = time.perf_counter(), 0
    for chunk in batched(texts, batch):
        for encoding in tokenizer.encode_batch(chunk, add_special_tokens=False):
            used.update(encoding.ids)
        lines += len(chunk)
        if lines % 200_000 < batch:
            log(f"  {lines:,} lines tokenised, {len(used):,} pieces seen ({time.perf_counter() - started:.0f} s)")
    return used


def _corpus_texts(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Space-joined sentences of corpus splits, keyed `corpus/split` (the pre-tokenised word split)."""
    from swener.data import corpora

    texts: dict[str, list[str]] = {}
    for name, split in pairs:
        corpus = corpora.load(name)
        texts[f"{name}/{split}"] = [" ".join(s.tokens) for s in corpus.splits[split]]
    return texts


def choose_pieces(tokenizer_json: dict, used: set[int]) -> list[int]:
    """Old ids to keep, in their old order: specials, `used`, and every Latin-script piece."""
    vocab = tokenizer_json["model"]["vocab"]
    specials = {token["id"] for token in tokenizer_json["added_tokens"]}
    return [i for i, (piece, _) in enumerate(vocab) if i in specials or i in used or latin_piece(piece)]


def trimmed_tokenizer_json(tokenizer_json: dict, keep: Sequence[int]) -> dict:
    """tokenizer.json with only the `keep` pieces (old ids, ascending), renumbered 0..len-1."""
    new_id = {old: new for new, old in enumerate(keep)}
    trimmed = copy.deepcopy(tokenizer_json)
    vocab = tokenizer_json["model"]["vocab"]
    trimmed["model"]["vocab"] = [vocab[i] for i in keep]
    trimmed["model"]["unk_id"] = new_id[tokenizer_json["model"]["unk_id"]]
    for token in trimmed["added_tokens"]:
        token["id"] = new_id[token["id"]]
    post = trimmed.get("post_processor") or {}
    for special in post.get("special_tokens", {}).values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    for key in ("cls", "sep"):  # RobertaProcessing keeps [token, id] pairs
        if isinstance(post.get(key), list):
            post[key] = [post[key][0], new_id[post[key][1]]]
    return trimmed


def identical_share(full, trimmed, keep: Sequence[int], texts: Sequence[str]) -> tuple[float, int]:
    """Share of `texts` whose trimmed piece sequence maps back to the full tokenizer's, and the count."""
    same = 0
    for chunk in batched(texts, 2000):
        for a, b in zip(full.encode_batch(chunk), trimmed.encode_batch(chunk)):
            same += a.ids == [keep[i] for i in b.ids]
    return (same / len(texts) if texts else 1.0), len(texts)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def trim(source: Path, out: Path, texts: Sequence[Path], train_corpora: Sequence[str] = TRAIN_CORPORA,
         check_splits: Sequence[tuple[str, str]] = CHECK_SPLITS, log: Log = log.info) -> dict:
    """Write the trimmed backbone folder `out` from `source`; return (and write) its manifest."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    from swener.atomic import atomic_dir

    if not (source / "tokenizer.json").is_file():
        raise SwenerError(f"{source}: no tokenizer.json; trimming needs a fast (Unigram) tokenizer folder")
    tokenizer_json = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    if tokenizer_json["model"]["type"] != "Unigram":
        raise SwenerError(f"{source}: the tokenizer is {tokenizer_json['model']['type']}, trimming handles Unigram")
    full = Tokenizer.from_str(json.dumps(tokenizer_json))
    started = time.perf_counter()
    log(f"tokenising the raw text ({len(texts)} files, every {HOLDOUT_EVERY}th line held back)")
    used = pieces_used(full, raw_lines(texts, held_back=False), log=log)
    from_raw = len(used)
    train_texts = _corpus_texts((name, "train") for name in train_corpora)
    for lines in train_texts.values():
        used |= pieces_used(full, lines, log=log)
    keep = choose_pieces(tokenizer_json, used)
    log(f"keeping {len(keep):,} of {len(tokenizer_json['model']['vocab']):,} pieces "
        f"({from_raw:,} seen in raw text, {len(used):,} with the train splits)")
    trimmed_json = trimmed_tokenizer_json(tokenizer_json, keep)
    trimmed = Tokenizer.from_str(json.dumps(trimmed_json))

    check_texts = _corpus_texts(check_splits)
    held = [line for _, line in zip(range(CHECK_LINES), raw_lines(texts, held_back=True))]
    check_texts["raw held-back slice"] = held
    identical = {}
    for name, lines in check_texts.items():
        share, n = identical_share(full, trimmed, keep, lines)
        identical[name] = {"share": share, "sentences": n}
        log(f"  identical segmentation, {name}: {share:.4%} of {n:,}")

    model = AutoModel.from_pretrained(str(source))
    model.eval()
    full_params = sum(p.numel() for p in model.parameters())
    old_table = model.get_input_embeddings().weight.detach()
    probes = [line for lines in check_texts.values() for line in lines
              if full.encode(line).ids == [keep[i] for i in trimmed.encode(line).ids]][:16]
    with torch.no_grad():
        before = [model(input_ids=torch.tensor([full.encode(line).ids])).last_hidden_state for line in probes]
    rows = torch.tensor(keep)
    model.set_input_embeddings(torch.nn.Embedding.from_pretrained(old_table[rows].clone(), freeze=False,
                                                                  padding_idx=model.config.pad_token_id))
    model.config.vocab_size = len(keep)
    with torch.no_grad():
        after = [model(input_ids=torch.tensor([trimmed.encode(line).ids])).last_hidden_state for line in probes]
    # the same sequences (mapped ids) through both tables: only float rounding may differ
    max_diff = max((float((a - b).abs().max()) for a, b in zip(before, after)), default=None)
    manifest = {
        "source": str(source),
        "pieces": {"before": len(tokenizer_json["model"]["vocab"]), "after": len(keep),
                   "seen_in_raw_text": from_raw, "seen_with_train_splits": len(used)},
        "parameters": {"before": full_params, "after": sum(p.numel() for p in model.parameters())},
        "bytes": {"before": _folder_bytes(source)},
        "identical_segmentation": identical,
        "max_hidden_state_difference": max_diff,
        "rule": "pieces seen in the raw text (all but every "
                f"{HOLDOUT_EVERY}th line) and the train splits of {', '.join(train_corpora)}, "
                "plus every piece of Latin-script letters, digits, punctuation and symbols, plus special tokens",
        "texts": [str(p) for p in texts],
        "seconds": 0.0,
    }
    with atomic_dir(out) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        (tmp / "tokenizer.json").write_text(json.dumps(trimmed_json, ensure_ascii=False), encoding="utf-8")
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            if (source / name).is_file():
                (tmp / name).write_bytes((source / name).read_bytes())
        (tmp / "kept_ids.json").write_text(json.dumps(keep), encoding="utf-8")
        manifest["bytes"]["after"] = _folder_bytes(tmp)
        manifest["seconds"] = time.perf_counter() - started
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {out}: {manifest['parameters']['before']:,} -> {manifest['parameters']['after']:,} parameters, "
        f"max hidden-state difference {max_diff} on {len(probes)} sentences")
    return manifest
