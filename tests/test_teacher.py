"""The teacher on a tiny transformer: training, the soft-label cache, its validation."""
import json

import numpy as np
import pytest

from swener.data import corpora
from swener.errors import DataError, SwenerError
from swener.files import sha256_of
from swener.kd import softlabels
from swener.teacher import run as teacher
from swener.train.fit import TrainSettings, fit


@pytest.fixture(scope="module")
def trained(tiny_backbone, tmp_path_factory):
    corpus = corpora.load("webbnyheter2012")
    settings = teacher.TeacherSettings(backbone=str(tiny_backbone), epochs=1, use_crf=True)
    tagger = teacher.build_teacher(str(tiny_backbone), corpus.types, settings)
    out = tmp_path_factory.mktemp("teacher") / "t"
    best = fit(tagger, corpora.to_flair(corpus, 40), out,
               TrainSettings(epochs=1, learning_rate=1e-3, batch_size=8, fine_tune=True, max_sentences=40))
    return corpus, best


def test_training_writes_a_finished_folder(trained):
    _, best = trained
    assert best.is_file() and (best.parent / "training.json").is_file()
    assert not best.parent.with_name(best.parent.name + ".partial").exists()


def test_soft_labels_round_trip_and_are_crf_marginals(trained, tmp_path):
    corpus, best = trained
    text = tmp_path / "text.txt"
    text.write_text("Anna Berg bor i Umeå sedan 2010. Hon arbetar på Volvo.\nEtt nytt stycke, t.ex. här.\n",
                    encoding="utf-8")
    paths = teacher.write_soft_labels(best, "webbnyheter2012", ["train", "dev"], [text], tmp_path / "soft",
                                      max_sentences=30)
    assert [p.name for p in paths] == ["train.npz", "dev.npz", "transfer-text.npz"]
    soft = softlabels.read(paths[0])
    tokens = [s.tokens for s in corpus.splits["train"][:30]]
    softlabels.validate(soft, paths[0], tokens, split="train", teacher_sha256=sha256_of(best))
    assert soft.tags == softlabels.canonical_tags(corpus.types) and soft.tags[0] == "O"
    assert soft.logp.dtype == np.float16 and soft.logp.shape == (sum(map(len, tokens)), 17)
    # the teacher has a CRF head: rows are marginals over the real tags (START/STOP carry ~0 mass)
    np.testing.assert_allclose(np.exp(soft.logp.astype(np.float64)).sum(axis=1), 1.0, atol=5e-3)
    assert len(soft.sentence(3)) == len(tokens[3])
    transfer = softlabels.read(paths[2])
    assert transfer.header["split"] == "transfer" and transfer.header["sentences"] == 3


def test_cache_refuses_mismatches(trained, tmp_path):
    corpus, best = trained
    tokens = [s.tokens for s in corpus.splits["dev"][:10]]
    rng = np.random.default_rng(0)
    dists = [np.log(rng.dirichlet(np.ones(17), size=len(t))) for t in tokens]
    path = softlabels.write(tmp_path / "dev.npz", dists, tags=softlabels.canonical_tags(corpus.types),
                            tokens=tokens, teacher_sha256="abc", corpus="webbnyheter2012", split="dev")
    soft = softlabels.read(path)
    np.testing.assert_allclose(soft.logp.astype(np.float32), np.concatenate(dists), atol=2e-2)
    with pytest.raises(SwenerError, match="token sequences differ"):
        softlabels.validate(soft, path, [["x"] * len(t) for t in tokens])
    with pytest.raises(SwenerError, match="sentences in the cache"):
        softlabels.validate(soft, path, tokens[:5])
    with pytest.raises(SwenerError, match="another teacher"):
        softlabels.validate(soft, path, tokens, teacher_sha256="def")
    with pytest.raises(SwenerError, match="expected 'train'"):
        softlabels.validate(soft, path, tokens, split="train")
    test_path = softlabels.write(tmp_path / "test.npz", dists, tags=soft.tags, tokens=tokens,
                                 teacher_sha256="abc", corpus="webbnyheter2012", split="test")
    with pytest.raises(SwenerError, match="never train on test"):
        softlabels.validate(softlabels.read(test_path), test_path, tokens)
    (tmp_path / "broken.npz").write_bytes(b"not an npz")
    with pytest.raises(DataError, match="not a swener soft-label file"):
        softlabels.read(tmp_path / "broken.npz")


def test_topk_form_keeps_the_top_tags(tmp_path):
    rng = np.random.default_rng(1)
    tokens = [["a", "b", "c"], ["d"]]
    dists = [np.log(rng.dirichlet(np.ones(5) * 0.3, size=len(t))) for t in tokens]
    path = softlabels.write(tmp_path / "x.npz", dists, tags=list("ABCDE"), tokens=tokens, teacher_sha256="t",
                            corpus="c", split="train", topk=2)
    dense = np.exp(softlabels.read(path).logp.astype(np.float64))
    full = np.exp(np.concatenate(dists))
    np.testing.assert_array_equal(dense.argmax(axis=1), full.argmax(axis=1))
    np.testing.assert_allclose(dense.sum(axis=1), 1.0, atol=1e-2)
    top2 = np.sort(full, axis=1)[:, -2:]  # renormalised over the kept tags, the others 0 (no uniform tail)
    np.testing.assert_allclose(np.sort(dense, axis=1)[:, -2:], top2 / top2.sum(axis=1, keepdims=True), atol=1e-2)
    assert ((dense > 0).sum(axis=1) == 2).all()


def test_parameters_without_embedding_tables(trained):
    """The teacher's count without tables keeps the transformer layers, drops vocabulary/position tables."""
    import flair

    from swener.eval.evaluate import count_parameters

    _, best = trained
    tagger = flair.nn.Classifier.load(best)
    bert = tagger.embeddings.model.embeddings  # flair may add a row to the vocabulary table
    tables = sum(table.weight.numel() for table in (bert.word_embeddings, bert.position_embeddings,
                                                     bert.token_type_embeddings))
    head = sum(p.numel() for name, p in tagger.named_parameters() if not name.startswith("embeddings."))
    total, without = count_parameters(tagger)
    transformer = sum(p.numel() for p in tagger.embeddings.model.parameters())
    assert without == transformer - tables + head and without > head
    assert total >= without + tables


@pytest.fixture(scope="module")
def softmax_teacher(tiny_backbone, tmp_path_factory):
    """A softmax-head teacher decoded as a BIOES chain, trained 2 epochs on 40 sentences through train_teacher."""
    settings = teacher.TeacherSettings(backbone=str(tiny_backbone), epochs=2, patience=5, learning_rate=1e-3,
                                       batch_size=8)
    out = tmp_path_factory.mktemp("softmax-teacher") / "t"
    return teacher.train_teacher("webbnyheter2012", settings, out, max_sentences=40)


def test_softmax_teacher_decodes_valid_bioes_and_caches_chain_marginals(softmax_teacher, tmp_path):
    import json

    from swener.serve.names import load_tagger

    tagger = load_tagger(str(softmax_teacher))
    assert type(tagger).__name__ == "TeacherTagger" and tagger.decoding == "bioes"  # survives save/load
    curve = json.loads((softmax_teacher.parent / "learning_curve.json").read_text())
    assert [e["epoch"] for e in curve] == [1, 2] and (softmax_teacher.parent / "learning_curve.png").is_file()
    sentences = corpora.load("webbnyheter2012").splits["dev"][:30]
    assert teacher.invalid_bioes(tagger, sentences)["invalid_transitions"] == 0
    path = teacher.write_soft_labels(softmax_teacher, "webbnyheter2012", ["dev"], [], tmp_path, max_sentences=30)[0]
    soft = softlabels.read(path)
    first = np.exp(soft.sentence(0)[0].astype(np.float64))
    inside = [i for i, t in enumerate(soft.tags) if t[:2] in ("I-", "E-")]
    assert first[inside].max() < 1e-3  # no valid sequence starts inside an entity
    last = np.exp(soft.sentence(0)[-1].astype(np.float64))
    opening = [i for i, t in enumerate(soft.tags) if t[:2] in ("B-", "I-")]
    assert last[opening].max() < 1e-3  # nor ends with one open


def test_sorted_and_bf16_passes_agree_with_the_corpus_order_float32_pass(softmax_teacher):
    from flair.data import Sentence

    from swener.serve.names import load_tagger

    tagger = load_tagger(str(softmax_teacher))
    tokens = [s.tokens for s in corpora.load("webbnyheter2012").splits["dev"][:40]]

    def run(**options):
        return np.concatenate(list(teacher.log_distributions(tagger, [Sentence(t) for t in tokens], 8, **options)))

    reference = run(sort_by_length=False)
    assert len(reference) == sum(map(len, tokens))
    np.testing.assert_allclose(np.exp(run(sort_by_length=True)), np.exp(reference), atol=1e-5)
    bf16 = run(bf16=True)
    assert np.abs(np.exp(bf16) - np.exp(reference)).max() < 0.1
    assert (bf16.argmax(1) == reference.argmax(1)).mean() > 0.95


def test_dev_curve_stops_after_patience_epochs_without_improvement(tmp_path):
    from flair.trainers.plugins.base import TrainingInterrupt

    from swener.train.curve import DevCurve

    curve = DevCurve(patience=2)
    curve.base_path = tmp_path
    for epoch, f1 in enumerate([0.5, 0.6, 0.58], start=1):
        curve.after_evaluation(epoch=epoch, current_model_is_best=False, validation_scores=(f1, 0.1))
    with pytest.raises(TrainingInterrupt, match="not improved for 2 epochs"):
        curve.after_evaluation(epoch=4, current_model_is_best=False, validation_scores=(0.59, 0.1))
    assert [e["dev_f1"] for e in curve.epochs] == [0.5, 0.6, 0.58, 0.59]
    assert (tmp_path / "learning_curve.json").is_file()


def test_transfer_cache_in_chunks_equals_one_pass_and_resumes(trained, tmp_path, monkeypatch):
    _, best = trained
    text = tmp_path / "news.txt"
    text.write_text("Anna Berg bor i Umeå. Hon arbetar på Volvo.\nRegeringen möttes i Stockholm i går. Det regnade.\n"
                    "Sverige vann. Ett nytt stycke, t.ex. här.\nEricsson i Kista.\n", encoding="utf-8")
    whole = teacher.write_soft_labels(best, "webbnyheter2012", [], [text], tmp_path / "a", chunk_sentences=1000)[0]
    chunked = teacher.write_soft_labels(best, "webbnyheter2012", [], [text], tmp_path / "b", chunk_sentences=3)[0]
    one, many = softlabels.read(whole), softlabels.read(chunked)
    assert len(one) == len(many) == 7 and len(list((tmp_path / "b" / "transfer-news.chunks").glob("*.npz"))) == 3
    np.testing.assert_array_equal(one.offsets, many.offsets)
    np.testing.assert_allclose(one.logp.astype(np.float32), many.logp.astype(np.float32), atol=2e-3)
    assert one.header["tokens_sha256"] == many.header["tokens_sha256"]

    # a pass stopped after its second chunk: the next one computes only the missing chunk
    (tmp_path / "b" / "transfer-news.chunks" / "00002.npz").unlink()
    chunked.unlink()
    computed = []
    real = teacher.log_distributions
    monkeypatch.setattr(teacher, "log_distributions", lambda tagger, sentences, *a: computed.append(len(sentences))
                        or real(tagger, sentences, *a))
    resumed = softlabels.read(teacher.write_soft_labels(best, "webbnyheter2012", [], [text], tmp_path / "b",
                                                        chunk_sentences=3)[0])
    assert computed == [1]
    np.testing.assert_array_equal(resumed.logp, many.logp)
    # its teacher time is every chunk's, the two read back included; this pass's is the third chunk's
    chunk_seconds = [softlabels.read(p).header["seconds"] for p in sorted((tmp_path / "b" / "transfer-news.chunks")
                                                                           .glob("*.npz"))]
    assert resumed.header["seconds"] == pytest.approx(sum(chunk_seconds))
    assert resumed.header["seconds_this_pass"] == pytest.approx(chunk_seconds[2])
    assert chunk_seconds[2] < resumed.header["seconds"]
    assert resumed.header["chunks_without_seconds"] == 0
    # a damaged chunk is computed again, not trusted
    (tmp_path / "b" / "transfer-news.chunks" / "00000.npz").write_bytes(b"broken")
    computed.clear()
    teacher.write_soft_labels(best, "webbnyheter2012", [], [text], tmp_path / "b", chunk_sentences=3)
    assert computed == [3]


def _cache_of(path, sentences, probs):
    """A soft-label cache of these TaggedSentences with the given per-token probability rows."""
    tags = softlabels.canonical_tags(["LOC", "MISC", "ORG", "PER"])
    return softlabels.write(path, [np.log(np.asarray(p, dtype=np.float64)) for p in probs], tags=tags,
                            tokens=[s.tokens for s in sentences], teacher_sha256="t" * 64, corpus="webbnyheter2012",
                            split=path.stem)


def _row(tags, on, mass):
    row = np.full(len(tags), (1 - mass) / (len(tags) - 1))
    row[tags.index(on)] = mass
    return row


def test_against_gold_measures_what_the_soft_targets_add(tmp_path):
    from swener.data.readers import TaggedSentence
    from swener.kd.against_gold import against_gold, bioes_of_iob2

    tags = softlabels.canonical_tags(["LOC", "MISC", "ORG", "PER"])
    sentences = [TaggedSentence(["Anna", "Berg", "sov"], ["B-PER", "I-PER", "O"]), TaggedSentence(["Umeå"], ["B-LOC"])]
    assert bioes_of_iob2(["B-PER", "I-PER", "O", "B-LOC", "B-ORG", "I-ORG", "I-ORG"]) == [
        "B-PER", "E-PER", "O", "S-LOC", "B-ORG", "I-ORG", "E-ORG"]
    probs = [[_row(tags, "B-PER", 0.9), _row(tags, "E-PER", 0.9), _row(tags, "O", 0.9)],
             [_row(tags, "O", 0.6)]]  # S-LOC, the gold tag, gets 0.4 / 16
    soft = softlabels.read(_cache_of(tmp_path / "train.npz", sentences, probs))
    got = against_gold(soft, [s.tags for s in sentences])
    # by hand: PER found, LOC missed: F1 2 / (2 + 0 + 1); 3 of 4 tokens right
    assert got["f1"] == pytest.approx(2 / 3) and got["token_accuracy"] == pytest.approx(0.75)
    assert got["gold_mass"] == pytest.approx((3 * 0.9 + 0.4 / 16) / 4, abs=2e-3)
    assert got["top_mass"] == pytest.approx((3 * 0.9 + 0.6) / 4, abs=2e-3) and got["confident"] == 0.0


def test_cli_against_gold_on_a_cache_of_gold_tags(tmp_path):
    from click.testing import CliRunner

    from swener.cli import main
    from swener.kd.against_gold import bioes_of_iob2

    tags = softlabels.canonical_tags(["LOC", "MISC", "ORG", "PER"])
    train = corpora.load("webbnyheter2012").splits["train"][:20]
    probs = [[_row(tags, t, 0.995) for t in bioes_of_iob2(s.tags)] for s in train]
    _cache_of(tmp_path / "train.npz", train, probs)
    result = CliRunner().invoke(main, ["teacher", "against-gold", "--soft-labels", str(tmp_path), "--split", "train"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)["train"]
    assert got["sentences"] == 20 and got["f1"] == 1.0 and got["token_accuracy"] == 1.0
    assert got["gold_mass"] == pytest.approx(0.995, abs=2e-3) and got["confident"] == 1.0
    missing = CliRunner().invoke(main, ["teacher", "against-gold", "--soft-labels", str(tmp_path), "--split", "nope"])
    assert missing.exit_code != 0 and "has no split 'nope'" in missing.output
