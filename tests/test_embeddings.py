"""Tests of swener.vectors.embeddings on tiny data: training, the compact Flair class, .bin/.vec import."""
from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from swener.errors import DataError, SwenerError  # noqa: E402
from swener.files import sha256_of  # noqa: E402
from swener.vectors import checks, training  # noqa: E402
from swener.vectors import embeddings as emb  # noqa: E402
from swener.vectors import files as vector_files  # noqa: E402
from swener.vectors import settings as vector_settings  # noqa: E402
from swener.vectors import text as vector_text  # noqa: E402

NAMES = ["Anna", "Erik", "Maria", "Lars", "Karin", "Johan"]
PLACES = ["Stockholm", "Göteborg", "Malmö", "Uppsala", "Lund", "Umeå"]
ORGS = ["Volvo", "Ericsson", "Scania", "Ikea"]
VERBS = ["besökte", "lämnade", "flyttade till", "arbetar i", "reste till"]
WHEN = ["i måndags", "på tisdagen", "förra året", "i går", "under våren"]
FILLER = ["regeringen meddelade att", "enligt uppgifter", "det är klart att", "tidningen skriver att"]


def tiny_sentences(n: int, seed: int = 0) -> list[list[tuple[str, str]]]:
    """Synthetic tagged Swedish sentences: (token, IO tag) pairs."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sent = [(w, "0") for w in rng.choice(FILLER).split()]
        sent.append((rng.choice(NAMES), "PER"))
        sent += [(w, "0") for w in rng.choice(VERBS).split()]
        sent.append((rng.choice(PLACES), "LOC"))
        sent += [(w, "0") for w in rng.choice(WHEN).split()]
        if rng.random() < 0.5:
            sent += [("och", "0"), ("träffade", "0"), (rng.choice(ORGS), "ORG")]
        sent.append((".", "0"))
        out.append(sent)
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """A raw text file and a tiny NER folder (train + test) whose test holds a word seen nowhere else."""
    root = tmp_path_factory.mktemp("data")
    text = root / "tiny.txt.gz"
    with gzip.open(text, "wt", encoding="utf-8") as handle:
        for sent in tiny_sentences(400, seed=1):
            handle.write(" ".join(t for t, _ in sent).replace(" .", ".") + " Det kostade 5 000 kronor.\n")
    ner = root / "ner"
    ner.mkdir()
    for split, seed, extra in (("train", 2, None), ("test", 3, "Testordsstaden")):
        lines = []
        for i, sent in enumerate(tiny_sentences(120, seed)):
            if extra and i == 0:
                sent = sent + [(extra, "LOC")]
            lines += [f"{t} {tag}" for t, tag in sent] + [""]
        (ner / f"{split}.txt").write_text("\n".join(lines), encoding="utf-8")
    return {"text": text, "ner": ner, "root": root}


TINY = dict(dim=16, epochs=3, min_count=2, bucket=5000, max_words=1000, max_ngrams=3000, workers=1)


@pytest.fixture(scope="module")
def trained(data) -> Path:
    settings = vector_settings.VectorSettings(ner_train=(str(data["ner"]),), **TINY)
    return training.train(settings, texts=[data["text"]], out=data["root"] / "emb" / settings.name(),
                     report=lambda _: None, check_splits=((str(data["ner"]), ("train", "test")),))


def test_training_writes_vectors_and_manifest(trained, data):
    manifest = json.loads((trained / "manifest.json").read_text())
    assert (trained / "vectors.npz").is_file()
    assert not list(trained.parent.glob(".*.tmp")), "temporary folder left behind"
    assert manifest["vocabulary_size"] > 20
    assert manifest["token_count"] == manifest["training_text"]["tokens"] > 4000
    assert manifest["sources"][0]["sha256"] == sha256_of(data["text"])
    assert manifest["training_text"]["ner_train"][0]["split"] == "train"
    assert manifest["words_per_second"] > 0 and manifest["seconds"]["training"] >= 0
    assert manifest["parameters"]["dim"] == 16
    oov = manifest["intrinsic"]["oov"]
    assert set(oov) == {f"{data['ner']}/train", f"{data['ner']}/test"}
    assert set(manifest["intrinsic"]["neighbours"]) == set(checks.PROBES)
    vectors = vector_files.load_vectors(trained)
    assert "Stockholm" in vectors.index and "5000" in vectors.index  # "5 000" is one token, spaces removed
    assert vectors.find("Testordsstaden") is None, "test-split text leaked into the training text"
    assert np.array_equal(vectors.vector("STOCKHOLM"), vectors.vector("Stockholm"))


def test_sample_option_and_names(data, tmp_path):
    parse = vector_settings.parse_sample
    assert parse("0.1") == 0.1 and parse("2M") == 2e6 and parse("500k") == 5e5
    with pytest.raises(SwenerError):
        vector_settings.parse_sample("lots")
    settings = vector_settings.VectorSettings(sample=0.3, ner_train=(), **TINY)
    assert settings.name().endswith("-sample0.3") and settings.name() != vector_settings.VectorSettings(**TINY).name()
    assert vector_settings.VectorSettings().name() == "cbow-d100-e5"
    out = training.train(settings, texts=[data["text"]], out=tmp_path / "s", report=lambda _: None, check_splits=())
    info = json.loads((out / "manifest.json").read_text())["training_text"]
    assert 0.15 < info["lines"] / 400 < 0.45


def test_oov_subword_vectors_nonzero_and_deterministic(trained):
    vectors = vector_files.load_vectors(trained)
    word = "Stockholmsresan"
    assert vectors.find(word) is None
    first = emb.CompactFastTextEmbeddings(trained)
    second = emb.CompactFastTextEmbeddings(trained)
    a, b = first._oov_vector(word), second._oov_vector(word)
    assert float(a.abs().sum()) > 0
    assert bool((a == b).all())
    assert np.allclose(a.numpy(), vectors.vector(word), atol=1e-6)
    zero = emb.CompactFastTextEmbeddings(trained, oov="zero")
    assert float(zero._oov_vector(word).abs().sum()) == 0.0


def test_round_trip_inside_sequence_tagger(trained, tmp_path):
    import torch
    from flair.data import Dictionary, Sentence
    from flair.models import SequenceTagger

    torch.manual_seed(0)
    tags = Dictionary(add_unk=False)
    for tag in ("O", "S-PER", "S-LOC", "B-ORG", "E-ORG"):
        tags.add_item(tag)
    tagger = SequenceTagger(hidden_size=8, embeddings=emb.CompactFastTextEmbeddings(trained), tag_dictionary=tags,
                            tag_type="ner", use_crf=True)
    tagger.eval()  # predict() does not switch dropout off; load() returns an eval-mode model
    path = tmp_path / "tagger.pt"
    tagger.save(path)
    loaded = SequenceTagger.load(path)
    assert isinstance(loaded.embeddings, emb.CompactFastTextEmbeddings)
    text = "Anna reste till Stockholmsresan och Ikeaborg i måndags ."

    def predict(model) -> list:
        sentence = Sentence(text.split())
        model.predict(sentence, return_probabilities_for_all_classes=True)
        return [(t.get_label("ner").value, [round(l.score, 6) for l in t.get_tags_proba_dist("ner")])
                for t in sentence]

    assert predict(tagger) == predict(loaded)
    original, again = Sentence(text.split()), Sentence(text.split())
    tagger.embeddings.embed(original)
    loaded.embeddings.embed(again)
    for a, b in zip(original, again):
        assert torch.equal(a.get_embedding(), b.get_embedding())
    assert loaded.embeddings.word_vectors.dtype == torch.float16


def _tiny_gensim_model(data):
    from gensim.models.fasttext import FastText

    sentences = [[t for t, _ in s] for s in tiny_sentences(300, seed=4)]
    return FastText(sentences, vector_size=12, min_count=2, bucket=3000, min_n=3, max_n=5, epochs=3,
                    workers=1, seed=1)


def test_facebook_bin_loading(data, tmp_path):
    from gensim.models.fasttext import save_facebook_model

    model = _tiny_gensim_model(data)
    path = tmp_path / "tiny.bin"
    save_facebook_model(model, str(path))
    vectors = vector_files.load_vectors(path)
    assert vectors.dim == 12 and vectors.minn == 3 and vectors.maxn == 5 and vectors.bucket == 3000
    assert len(vectors.words) == len(model.wv.index_to_key) and vectors.ngram_ids.size > 0
    for word in ("Stockholm", "regeringen"):
        assert np.allclose(vectors.vector(word), model.wv[word], atol=2e-3)
    oov = "Stockholmarna"
    assert oov not in model.wv.key_to_index
    ours, theirs = vectors.vector(oov), model.wv[oov]
    assert ours @ theirs / (np.linalg.norm(ours) * np.linalg.norm(theirs)) > 0.9
    out = training.import_pretrained(path, out=tmp_path / "imported", report=lambda _: None, check_splits=())
    assert json.loads((out / "manifest.json").read_text())["kind"] == "pretrained"
    assert float(np.abs(emb.CompactFastTextEmbeddings(out)._oov_vector(oov).numpy()).sum()) > 0


def test_vec_loading(tmp_path):
    path = tmp_path / "tiny.vec"
    path.write_text("3 4\nkung 1 0 0 0\ndrottning 0.9 0.1 0 0\nVolvo 0 0 1 0.5\n", encoding="utf-8")
    vectors = vector_files.load_vectors(path)
    assert vectors.words == ["kung", "drottning", "Volvo"] and vectors.dim == 4
    assert np.allclose(vectors.vector("Volvo"), [0, 0, 1, 0.5])
    assert vectors.nearest("kung", 1)[0][0] == "drottning"
    assert not vectors.vector("okänt").any(), "a .vec has no n-grams: OOV words get zeros"
    headerless = tmp_path / "noheader.vec"
    headerless.write_text("kung 1 0\nVolvo 0 1\n", encoding="utf-8")
    assert vector_files.load_vectors(headerless).words == ["kung", "Volvo"]


def test_clear_errors_for_missing_and_wrong_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        vector_files.load_vectors(tmp_path / "missing.bin")
    fake_bin = tmp_path / "fake.bin"
    fake_bin.write_bytes(b"\x00\x01\x02\x03not a model")
    with pytest.raises(DataError, match="not a Facebook fastText .bin"):
        vector_files.load_vectors(fake_bin)
    bad_vec = tmp_path / "bad.vec"
    bad_vec.write_text("2 3\nkung 1 0 0\nVolvo 1 x 0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.vec:3: expected numbers"):
        vector_files.load_vectors(bad_vec)
    short = tmp_path / "short.vec"
    short.write_text("2 3\nkung 1 0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"short.vec:2: expected a word and 3 numbers"):
        vector_files.load_vectors(short)
    binary_vec = tmp_path / "binary.vec"
    binary_vec.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        vector_files.load_vectors(binary_vec)
    with pytest.raises(DataError, match="not a swener embeddings folder"):
        vector_files.load_vectors(tmp_path)
    with pytest.raises(DataError, match="no such text file"):
        vector_text.text_sources([tmp_path / "nope.txt.gz"])


def test_cli_pretrained_error_is_one_line(tmp_path):
    from click.testing import CliRunner

    from swener.cli import main

    result = CliRunner().invoke(main, ["embeddings", "train", "--pretrained", str(tmp_path / "missing.vec")])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: ") and "no such file" in result.output
