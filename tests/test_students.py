"""A student trained end to end from the cache: the teacher never runs, results and card are written."""
import json

import flair
import numpy as np
import pytest

import swener  # noqa: F401  (registers StudentTagger for flair's loader)
from swener.data import corpora
from swener.errors import SwenerError
from swener.kd import softlabels
from swener.students.run import StudentSettings, train_student
from swener.teacher import run as teacher


class _Forbidden:
    def __call__(self, *args, **kwargs):
        raise AssertionError("the teacher ran during student training")


@pytest.fixture()
def no_teacher(monkeypatch):
    """Any way of running a teacher raises."""
    from flair.embeddings import TransformerWordEmbeddings

    for name in ("log_distributions", "build_teacher", "write_soft_labels", "evaluate_teacher"):
        monkeypatch.setattr(teacher, name, _Forbidden())
    monkeypatch.setattr(TransformerWordEmbeddings, "_add_embeddings_internal", _Forbidden())


def _cache(tmp_path, n):
    corpus = corpora.load("webbnyheter2012")
    tokens = [s.tokens for s in corpus.splits["train"][:n]]
    rng = np.random.default_rng(0)
    tags = softlabels.canonical_tags(corpus.types)
    # a confident teacher that agrees with the gold tags, with some mass elsewhere
    dists = []
    for sentence in corpus.splits["train"][:n]:
        probs = rng.dirichlet(np.ones(len(tags)), size=len(sentence.tokens)) * 0.2
        for i, tag in enumerate(sentence.tags):
            probs[i, tags.index("O" if tag == "O" else "S-" + tag[2:])] += 0.8
        dists.append(np.log(probs / probs.sum(axis=1, keepdims=True)))
    softlabels.write(tmp_path / "soft" / "train.npz", dists, tags=tags, tokens=tokens, teacher_sha256="t" * 64,
                     corpus="webbnyheter2012", split="train")
    return tmp_path / "soft"


def test_kd_student_trains_without_running_the_teacher(tmp_path, tiny_vectors, no_teacher):
    soft_dir = _cache(tmp_path, 40)
    settings = StudentSettings(family="cnn-crf", alpha=0.5, epochs=1, hidden_size=16, max_sentences=40)
    results = train_student(settings, "webbnyheter2012", tiny_vectors, soft_dir, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["settings"]["alpha"] == 0.5 and set(saved["scores"]) == {
        "webbnyheter2012/dev", "webbnyheter2012/test", "uner-pud/test", "uner-talbanken/test"}
    assert len(saved["counts"]["uner-pud/test"]) == 40
    assert saved["cost"]["tokens_per_second"] > 0 and saved["cost"]["parameters_without_embeddings"] > 0
    assert saved["training"]["epochs"] == 1
    tagger = flair.nn.Classifier.load(tmp_path / "run" / "best-model.pt")
    assert tagger.card["teacher"]["sha256"] == "t" * 64 and tagger.card["corpus_licence"] == "CC BY 4.0"
    assert tagger.card["test_f1"] == results["scores"]["webbnyheter2012/test"]["micro_f1"]


def test_kd_student_uses_the_first_sentences_of_a_longer_cache(tmp_path, tiny_vectors, no_teacher):
    soft_dir = _cache(tmp_path, 40)
    settings = StudentSettings(family="bilstm", alpha=0.5, epochs=1, hidden_size=8, max_sentences=30)
    results = train_student(settings, "webbnyheter2012", tiny_vectors, soft_dir, tmp_path / "run", eval_corpora=())
    assert results["training"]["train_sentences"] == 30 and (tmp_path / "run" / "results.json").is_file()


def test_kd_student_refuses_a_cache_shorter_than_its_sentences(tmp_path, tiny_vectors):
    soft_dir = _cache(tmp_path, 20)
    settings = StudentSettings(family="bilstm", alpha=0.5, epochs=1, hidden_size=8, max_sentences=30)
    with pytest.raises(SwenerError, match="20 sentences cached, the student trains on 30"):
        train_student(settings, "webbnyheter2012", tiny_vectors, soft_dir, tmp_path / "run")
    with pytest.raises(SwenerError, match="needs --soft-labels"):
        train_student(settings, "webbnyheter2012", tiny_vectors, None, tmp_path / "run")
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_kd_student_learns_from_a_transfer_set(tmp_path, tiny_vectors, no_teacher):
    from swener.teacher.run import read_text_sentences

    soft_dir = _cache(tmp_path, 40)
    text = tmp_path / "news.txt"
    text.write_text("Anna Berg bor i Umeå. Hon arbetar på Volvo i Göteborg.\nRegeringen möttes i Stockholm i går.\n",
                    encoding="utf-8")
    tokens = read_text_sentences(text)
    tags = softlabels.canonical_tags(corpora.load("webbnyheter2012").types)
    rng = np.random.default_rng(1)
    dists = [np.log(rng.dirichlet(np.ones(len(tags)), size=len(words))) for words in tokens]
    softlabels.write(soft_dir / "transfer-news.npz", dists, tags=tags, tokens=tokens, teacher_sha256="t" * 64,
                     corpus="text:news.txt", split="transfer")
    settings = StudentSettings(family="bilstm", alpha=0.5, epochs=1, hidden_size=8, max_sentences=40,
                               transfer_text=str(text), transfer_sentences=2, transfer_ratio=0.025)
    results = train_student(settings, "webbnyheter2012", tiny_vectors, soft_dir, tmp_path / "run")
    assert len(tokens) == 3 and results["transfer"] == {"text": str(text), "sentences": 2, "ratio": 0.025}
    assert results["training"]["train_sentences"] == 40 + 2
    # an epoch: the 40 gold sentences and 0.025 x 40 = 1 transfer sentence, drawn by the sampler Flair trained with
    assert results["training"]["labelled"] == 40 and results["training"]["transfer_per_epoch"] == 1
    assert results["training"]["updates_per_epoch"] == 2  # 41 sentences in batches of 32
    tagger = flair.nn.Classifier.load(tmp_path / "run" / "best-model.pt")
    assert tagger.card["teacher"]["transfer"]["sentences"] == 2
    assert "labelled=40, per_epoch=1)" in str(tagger.model_card["training_parameters"]["sampler"])

    text.write_text("En annan text.\n", encoding="utf-8")  # the cache no longer matches the text
    with pytest.raises(SwenerError, match="transfer-news.npz"):
        train_student(settings, "webbnyheter2012", tiny_vectors, soft_dir, tmp_path / "run2")
    plain = StudentSettings(family="bilstm", alpha=0.0, epochs=1, max_sentences=40, transfer_text=str(text))
    with pytest.raises(SwenerError, match="give --alpha > 0"):
        train_student(plain, "webbnyheter2012", tiny_vectors, soft_dir, tmp_path / "run3")


def test_a_seed_reproduces_a_run_and_another_seed_does_not(tmp_path, tiny_vectors):
    """The seed fixes the initial weights as well as the training (the weights used to come from the process's
    unseeded generator, so two runs of one command differed); the RNG is disturbed between runs on purpose."""
    import torch

    def weights(seed: int, out: str) -> dict:
        torch.rand(17)  # whatever ran before in this process must not matter
        settings = StudentSettings(family="bilstm-crf", alpha=0.0, epochs=1, hidden_size=8, max_sentences=30,
                                   seed=seed, dev_only=True, gradient_probes=0)
        train_student(settings, "webbnyheter2012", tiny_vectors, None, tmp_path / out, eval_corpora=())
        return flair.nn.Classifier.load(tmp_path / out / "best-model.pt").state_dict()

    first, again, other = weights(1, "a"), weights(1, "b"), weights(2, "c")
    assert first.keys() == again.keys()
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)
    losses = [(tmp_path / run / "loss.tsv").read_text().splitlines()[1].split("\t")[3] for run in "ab"]
    assert losses[0] == losses[1]
