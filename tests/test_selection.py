"""Entity-dense transfer sets: which sentences are chosen, and that students read the result like any transfer set."""
import numpy as np
import pytest
from click.testing import CliRunner

from swener.cli import main
from swener.errors import SwenerError
from swener.kd import softlabels
from swener.students.run import load_transfer
from swener.teacher import selection
from swener.teacher.run import read_text_sentences

TAGS = softlabels.canonical_tags(["LOC", "MISC", "ORG", "PER"])
STARTS = [i for i, t in enumerate(TAGS) if t[:2] in ("B-", "S-")]
NOT_STARTS = [i for i, t in enumerate(TAGS) if t[:2] not in ("B-", "S-")]


def _cache(tmp_path, name, text, rng, teacher="t", kbest=True):
    """A transfer text and a cache whose most probable tags start an entity at random tokens."""
    path = tmp_path / f"{name}.txt"
    path.write_text(text, encoding="utf-8")
    tokens = read_text_sentences(path)
    dists = []
    for words in tokens:
        p = rng.dirichlet(np.ones(len(TAGS)), size=len(words))
        top = [rng.choice(STARTS) if rng.random() < 0.15 else rng.choice(NOT_STARTS) for _ in words]
        p[np.arange(len(words)), top] += 2.0  # the chosen tag is the most probable at every token
        dists.append(np.log(p / p.sum(axis=1, keepdims=True)))
    cache = softlabels.write(tmp_path / f"transfer-{name}.npz", dists, tags=TAGS, tokens=tokens,
                             teacher_sha256=teacher * 64, corpus=f"text:{path.name}", split="transfer")
    if kbest:
        paths = [rng.integers(0, len(TAGS), size=(2, len(words))) for words in tokens]
        scores = [np.log(np.array([0.7, 0.2])) for _ in tokens]
        softlabels.add_kbest(cache, paths, scores, 2)
    return path, tokens, softlabels.read(cache)


TEXT_A = ("Anna Berg bor i Umeå. Hon arbetar på Volvo i Göteborg, sedan 2019.\n"
          "Regeringen möttes i Stockholm i går. Det regnade hela dagen.\n"
          "Vad sa ministern (S) om skatten? Ingen vet.\n" * 6)
TEXT_B = "Kungen besökte Malmö. Sverige vann över Norge med 3-1.\nSMHI varnar för storm i Norrland.\n" * 5


def test_the_chosen_sentences_are_those_with_enough_predicted_entities(tmp_path):
    rng = np.random.default_rng(3)
    text_a, tokens_a, soft_a = _cache(tmp_path, "a", TEXT_A, rng)
    text_b, tokens_b, soft_b = _cache(tmp_path, "b", TEXT_B, rng)
    for min_entities in (1, 2):
        expected = []  # brute force: count the B-/S- argmax tokens of each sentence
        for tokens, soft in ((tokens_a, soft_a), (tokens_b, soft_b)):
            for i, words in enumerate(tokens):
                best = [TAGS[int(np.argmax(row))] for row in soft.sentence(i)]
                if sum(t[:2] in ("B-", "S-") for t in best) >= min_entities:
                    expected.append((words, soft.sentence(i), soft.sentence_kbest(i)))
        assert 0 < len(expected) < len(tokens_a) + len(tokens_b)
        name = f"dense{min_entities}"
        out_text, cache, summary = selection.select_dense(tmp_path, [text_a, text_b], name, min_entities)
        assert out_text == tmp_path / f"{name}.txt.gz" and cache == tmp_path / f"transfer-{name}.npz"
        assert summary["sentences"] == len(expected)
        assert summary["pool_sentences"] == len(tokens_a) + len(tokens_b)
        # the new text reads back as exactly the chosen sentences, and its cache holds their distributions
        assert read_text_sentences(out_text) == [words for words, _, _ in expected]
        chosen = softlabels.read(cache)
        for i, (_, logp, (paths, scores)) in enumerate(expected):
            np.testing.assert_allclose(chosen.sentence(i).astype(np.float32), logp.astype(np.float32), atol=1e-3)
            got_paths, got_scores = chosen.sentence_kbest(i)
            np.testing.assert_array_equal(got_paths, paths)
            np.testing.assert_array_equal(got_scores, scores)
        # a student's loader takes it like any transfer set, k-best paths included
        students = load_transfer(tmp_path, out_text, None, "t" * 64, ["LOC", "MISC", "ORG", "PER"], kbest=True)
        assert [[t.text for t in s] for s in students] == [words for words, _, _ in expected]

    capped = selection.select_dense(tmp_path, [text_a, text_b], "capped", 1, sentences=3)[2]
    assert capped["sentences"] == 3 and capped["sources"][1]["chosen"] == 0


def test_entity_starts_counts_per_sentence():
    logp = np.full((5, len(TAGS)), -9.0)
    for row, tag in enumerate(["B-PER", "E-PER", "O", "S-LOC", "I-ORG"]):
        logp[row, TAGS.index(tag)] = 0.0
    soft = softlabels.SoftLabels({"tags": TAGS}, logp, np.array([0, 2, 3, 5]))
    assert selection.entity_starts(soft).tolist() == [1, 0, 1]


def test_a_sentence_that_does_not_read_back_as_itself_is_not_written():
    assert selection.round_trips(["Anna", "bor", "i", "Umeå", "."])
    # "5" and "000", two tokens, read back as one: "5 000" (a number with a thousands space)
    assert not selection.round_trips(["Det", "kostar", "5", "000", "kr"])


def test_refusals_are_one_line_naming_what_to_do(tmp_path):
    rng = np.random.default_rng(5)
    text_a, _, _ = _cache(tmp_path, "a", TEXT_A, rng)
    text_b, _, _ = _cache(tmp_path, "b", TEXT_B, rng, teacher="u")
    with pytest.raises(SwenerError, match="another teacher"):
        selection.select_dense(tmp_path, [text_a, text_b], "mixed")
    with pytest.raises(SwenerError, match="lower --min-entities"):
        selection.select_dense(tmp_path, [text_a], "none", min_entities=100)
    assert not (tmp_path / "none.txt.gz").exists() and not (tmp_path / "transfer-none.npz").exists()
    result = CliRunner().invoke(main, ["teacher", "select-transfer", "--soft-labels", str(tmp_path),
                                       "--text", str(text_a), "--name", "x.y"])
    assert result.exit_code != 0 and "plain name" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["teacher", "select-transfer", "--soft-labels", str(tmp_path),
                                       "--text", str(text_a), "--name", "ok"])
    assert result.exit_code == 0 and "--transfer" in result.output
    assert (tmp_path / "ok.txt.gz").exists()
