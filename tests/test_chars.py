"""Character features: ids, the CNN against a hand computation, every family on the lean and Flair paths, saving."""
import json

import flair
import numpy as np
import pytest
import torch
from flair.data import Sentence

import swener  # noqa: F401  (registers StudentTagger for flair's loader)
from swener.data import corpora
from swener.students.inputs import CharCNN
from swener.students.run import StudentSettings, train_student
from swener.students.tagger import FAMILIES, build_student
from swener.vectors.chars import PAD, UNK, CharIds, alphabet
from swener.vectors.embeddings import CompactFastTextEmbeddings

ODD = ["Ödeshögsbo", "😀", "5 000", "EU-kommissionen", "xyzzyq"]


@pytest.fixture(scope="module")
def corpus():
    return corpora.load("webbnyheter2012")


@pytest.fixture(scope="module")
def chars(corpus):
    return {"alphabet": alphabet(t for s in corpus.splits["train"][:300] for t in s.tokens), "dim": 6, "filters": 7}


def test_alphabet_and_ids():
    assert alphabet(["aab", "ba", "c"]) == ["a", "b", "c"]  # most frequent first, ties by code point
    ids = CharIds(["a", "b"], max_length=4)
    assert len(ids) == 4 and ids.word("abz") == [2, 3, UNK] and ids.word("a b") == [2, 3]
    assert ids.word("aaaabbbb") == [2, 2, 3, 3]  # a long word keeps its first and last halves
    batch = ids.batch([["ab"], ["a", "bab"]])
    assert batch.shape == (2, 2, 3) and batch[0, 1].tolist() == [PAD] * 3 and batch[1, 1].tolist() == [3, 2, 3]


def test_char_cnn_matches_a_hand_computation():
    torch.manual_seed(3)
    cnn = CharCNN(["a", "b", "c"], dim=4, filters=5, width=3)
    ids = cnn.char_ids([["cab", "b"], ["a"]], steps=2)
    out = cnn(ids).detach().numpy()
    table = cnn.embedding.weight.detach().numpy()
    weight, bias = cnn.conv.weight.detach().numpy(), cnn.conv.bias.detach().numpy()  # [F, D, 3], [F]

    def by_hand(word_ids):
        x = np.pad(table[word_ids], ((1, 1), (0, 0)))  # zero padding around the word, as Conv1d's
        conv = np.stack([np.einsum("fdk,kd->f", weight, x[i:i + 3]) + bias for i in range(len(word_ids))])
        return conv.max(axis=0)

    np.testing.assert_allclose(out[0, 0], by_hand([4, 2, 3]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[0, 1], by_hand([3]), rtol=1e-5, atol=1e-6)  # padded to 3 characters
    assert np.all(out[1, 1] == 0)  # a padding word


def _student(family, vectors, corpus, chars):
    flair.set_seed(7)
    return build_student(family, CompactFastTextEmbeddings(vectors), corpus.types, hidden_size=10, chars=chars)


def _batch(corpus):
    train = list(corpora.to_flair(corpus, 30).train)[:10]
    return sorted([*train, Sentence(["Anna", *ODD, "."])], key=len, reverse=True)


def _both(student, fn):
    student.lean = False
    flair_result = fn()
    student.lean = True
    return flair_result, fn()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_gives_the_same_tensors_loss_and_gradients_on_both_paths(family, corpus, chars, tiny_vectors):
    student = _student(family, tiny_vectors, corpus, chars)
    assert student.input_parts() == [("vectors", 16), ("chars", 7)]
    batch = _batch(corpus)
    (flair_x, _), (lean_x, lengths) = _both(student, lambda: student._prepare_tensors(batch))
    assert lean_x.shape[-1] == 23 and torch.equal(flair_x, lean_x)
    assert float(lean_x[0, :, 16:].detach().abs().sum()) > 0 and bool((lean_x[-1, len(batch[-1]):] == 0).all())
    student.train()

    def loss_and_grads():
        torch.manual_seed(11)
        student.zero_grad()
        loss, count = student.forward_loss(batch)
        loss.backward()
        return float(loss.detach()), count, student.char_net.conv.weight.grad.clone()

    (flair_loss, flair_n, flair_g), (lean_loss, lean_n, lean_g) = _both(student, loss_and_grads)
    assert lean_loss == pytest.approx(flair_loss, rel=1e-6) and flair_n == lean_n
    assert float(lean_g.abs().sum()) > 0 and torch.allclose(flair_g, lean_g, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("family", ["bilstm-crf", "cnn", "window-crf", "idcnn"])
def test_predict_tag_tokens_and_a_saved_model_agree(family, corpus, chars, tiny_vectors, tmp_path):
    student = _student(family, tiny_vectors, corpus, chars)
    student.eval()
    with torch.no_grad():
        student.linear.bias[student.label_dictionary.get_idx_for_item("O")] -= 1.0
    tokens = [s.tokens for s in corpus.splits["test"][:60]] + [ODD]

    def spans(tagger):
        sentences = [Sentence(t) for t in tokens]
        tagger.predict(sentences, mini_batch_size=16)
        return [[(sp.tokens[0].idx, sp.tokens[-1].idx, sp.get_label("ner").value) for sp in s.get_spans("ner")]
                for s in sentences]

    flair_spans, lean_spans = _both(student, lambda: spans(student))
    assert flair_spans == lean_spans and sum(map(len, lean_spans)) > 10
    student.save(tmp_path / "model.pt")
    loaded = flair.nn.Classifier.load(tmp_path / "model.pt")
    assert loaded.char_net.options() == student.char_net.options()
    assert loaded.tag_tokens(tokens) == student.tag_tokens(tokens)
    assert spans(loaded) == lean_spans


def test_a_model_without_chars_saves_and_tags_as_before(corpus, tiny_vectors, tmp_path):
    """A model saved without the new inputs (as every earlier version saved) loads and tags the same."""
    student = _student("bilstm-crf", tiny_vectors, corpus, None)
    assert student.char_net is None and student.subword_net is None and not student.has_word_features
    assert student.embedding2nn.in_features == 16  # Flair's own reprojection, unchanged
    student.save(tmp_path / "model.pt")
    state = torch.load(tmp_path / "model.pt", weights_only=False)
    assert state["chars"] is None and state["subwords"] is None
    assert not any(k.startswith(("char_net.", "subword_net.")) for k in state["state_dict"])
    for key in ("chars", "subwords"):  # a file of an earlier version has no such keys
        del state[key]
    torch.save(state, tmp_path / "old.pt")
    tokens = [s.tokens for s in corpus.splits["dev"][:80]] + [ODD]
    expected = student.eval().tag_tokens(tokens)
    for path in ("model.pt", "old.pt"):
        loaded = flair.nn.Classifier.load(tmp_path / path)
        assert loaded.char_net is None and loaded.tag_tokens(tokens) == expected


def test_train_with_chars_records_the_inputs(tmp_path, tiny_vectors):
    settings = StudentSettings(family="cnn-crf", alpha=0.0, epochs=1, hidden_size=16, max_sentences=40, chars=True,
                               char_dim=5, char_filters=9)
    train_student(settings, "webbnyheter2012", tiny_vectors, None, tmp_path / "run", eval_corpora=())
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["settings"]["chars"] is True and saved["settings"]["char_filters"] == 9
    assert saved["settings"]["subwords"] is None and saved["inputs"]["chars"]["filters"] == 9
    tagger = flair.nn.Classifier.load(tmp_path / "run" / "best-model.pt")
    train_chars = {c for s in corpora.load("webbnyheter2012").splits["train"][:40] for t in s.tokens for c in t}
    assert set(tagger.char_net.ids.chars) == train_chars - {" "} and tagger.input_parts()[-1] == ("chars", 9)


def test_a_student_with_chars_is_refused_by_the_onnx_export_in_one_line(corpus, chars, tiny_vectors, tmp_path):
    from swener.errors import SwenerError
    from swener.serve.export import export

    student = _student("bilstm-crf", tiny_vectors, corpus, chars)
    student.save(tmp_path / "model.pt")
    with pytest.raises(SwenerError, match="character or subword inputs cannot be exported") as err:
        export(student.eval(), tmp_path / "model.pt", tmp_path / "export")
    assert "\n" not in str(err.value) and not (tmp_path / "export").exists()
