"""The teacher's subword table as a student input: against an independent computation, PCA against numpy's SVD,
unseen words without the backbone folder, both paths, saving, training."""
import json
import shutil

import flair
import numpy as np
import pytest
import torch
from flair.data import Sentence

import swener  # noqa: F401  (registers StudentTagger for flair's loader)
from swener.data import corpora
from swener.errors import DataError
from swener.students.run import StudentSettings, train_student
from swener.students.tagger import build_student
from swener.vectors import subwords
from swener.vectors.embeddings import CompactFastTextEmbeddings

WORDS = ["Stockholm", "riksdagen", "Anna", "EU-kommissionen", "Ödeshögsbo", "5 000", "."]
UNSEEN = ["Kvarnbyvägen", "zxqvk", "Testordsstaden"]


@pytest.fixture(scope="module")
def corpus():
    return corpora.load("webbnyheter2012")


@pytest.fixture(scope="module")
def hand(tiny_backbone):
    """Independent: transformers' tokenizer and the model's input embedding rows, averaged by hand."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    table = AutoModel.from_pretrained(tiny_backbone).get_input_embeddings().weight.detach().numpy()

    def vector(word, first=False):
        ids = tokenizer(word.replace(" ", ""), add_special_tokens=False)["input_ids"]
        return table[ids[:1] if first else ids].mean(axis=0)
    vector.tokenizer = tokenizer
    return vector, table


def test_word_vectors_are_the_mean_of_their_pieces_embedding_rows(tiny_backbone, hand):
    vector, table = hand
    built = subwords.build_table(tiny_backbone, WORDS, dtype=np.float32)
    assert built.pieces.shape == table.shape and built.words == [w.replace(" ", "") for w in WORDS]
    assert any(len(built.pieces_of(w)) > 1 for w in WORDS)  # some words are cut into several pieces
    np.testing.assert_allclose(built.vectors(WORDS), np.stack([vector(w) for w in WORDS]), rtol=1e-6, atol=1e-7)
    first = subwords.build_table(tiny_backbone, WORDS, pooling="first", dtype=np.float32)
    np.testing.assert_allclose(first.vectors(WORDS), np.stack([vector(w, first=True) for w in WORDS]), atol=1e-7)
    # an unseen word is cut by the kept tokenizer: the same vector as if it had been in the table
    np.testing.assert_allclose(built.vectors(UNSEEN), np.stack([vector(w) for w in UNSEEN]), rtol=1e-6, atol=1e-7)
    assert all(w not in built.index for w in UNSEEN)


def test_pca_equals_numpys_svd(tiny_backbone, hand):
    _, table = hand
    reduced, facts = subwords.pca(table, 5)
    centred = table.astype(np.float64) - table.mean(axis=0)
    _, values, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:5].T
    signs = np.sign((reduced * expected).sum(axis=0))  # a component's sign is a convention
    assert set(signs.tolist()) <= {-1.0, 1.0}
    np.testing.assert_allclose(reduced, expected * signs, rtol=1e-4, atol=1e-5)
    assert facts["explained_variance"] == pytest.approx((values[:5] ** 2).sum() / (values ** 2).sum(), abs=1e-4)
    built = subwords.build_table(tiny_backbone, WORDS, dim=5, dtype=np.float32)
    np.testing.assert_allclose(built.pieces, reduced)
    assert built.meta["pca_dim"] == 5
    with pytest.raises(ValueError, match="must lie in"):
        subwords.pca(table, table.shape[1] + 1)


def test_first_piece_skips_a_bare_word_start():
    from tokenizers import Tokenizer, models, pre_tokenizers

    pieces = [("<unk>", 0.0), ("\u2581", -1.0), ("\u2581ab", -1.0), ("q", -2.0), ("z", -2.0)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=0))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    start = {tokenizer.token_to_id("\u2581")}
    assert subwords.cut(tokenizer, ["qz", "ab", "abq"], "mean", start) == [[1, 3, 4], [2], [2, 3]]
    assert subwords.cut(tokenizer, ["qz", "ab", "abq"], "first", start) == [[3], [2], [2]]


def test_the_table_file_round_trips_without_pickles(tiny_backbone, tmp_path):
    built = subwords.build_table(tiny_backbone, WORDS, dim=4)
    built.save(tmp_path / "subwords.npz")
    with np.load(tmp_path / "subwords.npz", allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
    again = subwords.SubwordTable.load(tmp_path / "subwords.npz")
    assert again.words == built.words and np.array_equal(again.vectors(UNSEEN), built.vectors(UNSEEN))
    (tmp_path / "bad.npz").write_bytes(b"nonsense")
    with pytest.raises(DataError, match="bad.npz: not a swener subword table"):
        subwords.SubwordTable.load(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="tokenizer.json: missing"):
        subwords.build_table(tmp_path, WORDS)


def _student(family, vectors, corpus, table, trainable=False):
    flair.set_seed(5)
    return build_student(family, CompactFastTextEmbeddings(vectors), corpus.types, hidden_size=10,
                         subwords=table, subword_trainable=trainable, chars=None)


@pytest.mark.parametrize("trainable", [False, True])
def test_both_paths_agree_and_a_saved_student_needs_no_backbone(trainable, corpus, tiny_vectors, tiny_backbone,
                                                                hand, tmp_path):
    folder = tmp_path / "backbone"
    shutil.copytree(tiny_backbone, folder)
    words = [t for s in corpus.splits["train"][:50] for t in s.tokens]
    student = _student("bilstm-crf", tiny_vectors, corpus, subwords.build_table(folder, words, dim=6), trainable)
    assert student.input_parts() == [("vectors", 16), ("subwords", 6)]
    batch = sorted([*list(corpora.to_flair(corpus, 20).train)[:8], Sentence(["Anna", *UNSEEN])], key=len,
                   reverse=True)
    student.lean = False
    flair_x, _ = student._prepare_tensors(batch)
    student.lean = True
    lean_x, _ = student._prepare_tensors(batch)
    assert torch.equal(flair_x, lean_x)
    # the subword part of a word is the PCA-reduced mean of its pieces (float16 table when frozen)
    reduced, _ = subwords.pca(hand[1], 6)
    ids = hand[0].tokenizer("Kvarnbyvägen", add_special_tokens=False)["input_ids"]
    assert len(ids) > 1 and "Kvarnbyvägen" not in student.subword_net._lookup.index
    row = [s for s in batch if s[0].text == "Anna" and len(s) == 4][0]
    position = batch.index(row)
    np.testing.assert_allclose(lean_x[position, 1, 16:].detach().numpy(), reduced[ids].mean(axis=0), atol=2e-3)
    if trainable:  # one step changes the piece rows, and an unseen word's vector follows them
        before = student.subword_net.table.weight.detach().clone()
        optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
        loss, _ = student.forward_loss(batch)
        loss.backward()
        optimizer.step()
        assert not torch.equal(before[ids], student.subword_net.table.weight.detach()[ids])
    student.save(tmp_path / "model.pt")
    shutil.rmtree(folder)  # a saved student embeds unseen words from its own piece table and tokenizer
    loaded = flair.nn.Classifier.load(tmp_path / "model.pt")
    assert loaded.subword_net.trainable is trainable
    tokens = [s.tokens for s in corpus.splits["test"][:40]] + [UNSEEN]
    assert loaded.tag_tokens(tokens) == student.eval().tag_tokens(tokens)
    expected = student.subword_net([UNSEEN], 3)
    assert torch.equal(loaded.subword_net([UNSEEN], 3), expected) and float(expected.detach().abs().sum()) > 0


def test_train_with_subwords_records_the_inputs(tmp_path, tiny_vectors, tiny_backbone):
    settings = StudentSettings(family="bilstm", alpha=0.0, epochs=1, hidden_size=8, max_sentences=30,
                               subwords=str(tiny_backbone), subword_dim=4, subword_trainable=True, chars=True)
    train_student(settings, "webbnyheter2012", tiny_vectors, None, tmp_path / "run", eval_corpora=())
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["settings"]["subwords"] == str(tiny_backbone) and saved["settings"]["subword_dim"] == 4
    assert saved["settings"]["subword_trainable"] is True and saved["settings"]["chars"] is True
    facts = saved["inputs"]["subwords"]
    vocabulary = len(CompactFastTextEmbeddings(tiny_vectors).words)
    assert facts["dim"] == 4 and facts["pca_dim"] == 4 and facts["words"] >= vocabulary and facts["bytes"] > 0
    tagger = flair.nn.Classifier.load(tmp_path / "run" / "best-model.pt")
    assert [name for name, _ in tagger.input_parts()] == ["vectors", "subwords", "chars"]
    assert tagger.card["inputs"]["subwords"]["trainable"] is True


def test_an_onnx_graph_with_both_inputs_matches_the_student_from_torch_free_inputs(corpus, tiny_vectors,
                                                                                  tiny_backbone, tmp_path):
    """What an export needs: `ExportGraph` traced to ONNX, its inputs built with numpy only (fastText `WordTable`,
    the exported `SubwordTable`, `CharIds`), ONNX Runtime's emissions equal the student's."""
    import warnings

    import onnxruntime

    from swener.students.inputs import ExportGraph, export_inputs
    from swener.vectors.chars import CharIds, alphabet
    from swener.vectors.compact import CompactVectors, WordTable

    words = [t for s in corpus.splits["train"][:80] for t in s.tokens]
    flair.set_seed(5)
    student = build_student("bilstm-crf", CompactFastTextEmbeddings(tiny_vectors), corpus.types, hidden_size=10,
                            subwords=subwords.build_table(tiny_backbone, words, dim=6),
                            chars={"alphabet": alphabet(words), "dim": 4, "filters": 5}).eval()
    samples, names, axes = export_inputs(student)
    assert names == ["vectors", "subwords", "chars", "lengths"]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(ExportGraph(student), samples, str(tmp_path / "model.onnx"), dynamo=False,
                          input_names=names, output_names=["emissions"], opset_version=17, dynamic_axes=axes)
    student.subword_net.table_for_export().save(tmp_path / "subwords.npz")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])

    tokens = sorted([s.tokens for s in corpus.splits["test"][:12]] + [UNSEEN], key=len, reverse=True)
    table, pieces = WordTable(CompactVectors.load(tiny_vectors)), subwords.SubwordTable.load(tmp_path / "subwords.npz")
    saved = student.char_net.options()  # what an export writes into its config
    char_ids = CharIds(saved["alphabet"], saved["max_length"])
    steps = len(tokens[0])
    ids = np.full((len(tokens), steps), -1, dtype=np.int64)
    sub = np.zeros((len(tokens), steps, 6), dtype=np.float32)
    for row, sentence in enumerate(tokens):
        ids[row, :len(sentence)] = table.word_ids(sentence)
        sub[row, :len(sentence)] = pieces.vectors(sentence)
    feeds = {"vectors": table.lookup(ids), "subwords": sub, "chars": char_ids.batch(tokens, steps),
             "lengths": np.asarray([len(t) for t in tokens], dtype=np.int64)}
    (onnx_emissions,) = session.run(["emissions"], feeds)
    with torch.no_grad():
        expected = student.emissions(*student._prepare_tensors([Sentence(t) for t in tokens])).numpy()
    assert onnx_emissions.shape == expected.shape
    np.testing.assert_allclose(onnx_emissions, expected, atol=1e-4)


def test_a_bad_subword_option_is_one_error_line(tmp_path, tiny_vectors, tiny_backbone):
    import subprocess
    import sys
    from pathlib import Path

    swener_bin = Path(sys.executable).parent / "swener"
    base = [str(swener_bin), "train", "--family", "bilstm", "--alpha", "0", "--embeddings", str(tiny_vectors),
            "--max-sentences", "5", "--epochs", "1", "--out", str(tmp_path / "run")]
    for extra, message in ((["--subwords", str(tmp_path / "nowhere")], "nowhere: no such folder"),
                           (["--subwords", str(tiny_backbone), "--subword-dim", "999"],
                            "--subword-dim: a subword dimension must lie in [1, 32]")):
        result = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=300)
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
