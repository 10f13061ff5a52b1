"""Exported (ONNX) students and reduced-precision variants: same tags as the Flair model, the CLI, save/load."""
import gzip
import json
import os
import subprocess
import sys

import flair
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from flair.data import Sentence

import swener  # noqa: F401  (registers StudentTagger for flair's loader)
from swener.cli import main
from swener.data import corpora
from swener.errors import SwenerError
from swener.serve import export, quantize
from swener.serve import names as models
from swener.serve.onnx import OnnxTagger
from swener.students.tagger import build_student
from swener.vectors.embeddings import CompactFastTextEmbeddings

pytest.importorskip("onnxruntime")

ODD = ["Testordsstaden", "STOCKHOLM", "5 000", "xyzzyq", "Ödeshögsbo", "😀", "EU-kommissionen"]
TEXT = ("\ufeffAnna Berg bor i Umeå.\r\n\r\n  \t\r\nHon träffade Per Albin Hansson 5 000 gånger i Malmö och "
        "Lund!\r\nÄlvsbyn\u2028Ödeshög\rTomt:\u00a0Kiruna 😀 Luleå\n\nSista Raden utan radslut")
TOKENS = "  Anna  bor\ti Ume\u00e5  \r\n\r\n\n. \nPer Albin bor i Lund\n"
CONLL = ("-DOCSTART- -X- O\n\nAnna PER x\nbor O x\n\n\n5 000\tO\tNUM\nUme\u00e5\tLOC\nMalm\u00f6 LOC\n")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train(family, vectors, corpus, steps=0):
    flair.set_seed(2)
    tagger = build_student(family, CompactFastTextEmbeddings(vectors), corpus.types, hidden_size=8,
                           card={"corpus": "webbnyheter2012", "family": family, "seed": 1})
    train = list(corpora.to_flair(corpus, 200).train)[:64]
    optimizer = torch.optim.SGD(tagger.parameters(), lr=0.01)
    for start in range(0, 16 * steps, 16):
        optimizer.zero_grad()
        tagger.forward_loss(train[start:start + 16])[0].backward()
        optimizer.step()
    with torch.no_grad():  # towards entities, so that there are many spans to compare
        tagger.linear.bias[tagger.label_dictionary.get_idx_for_item("O")] -= 1.0
    return tagger.eval()


EXPORTED = ("bilstm-crf", "cnn", "window-crf", "idcnn")  # every encoder, both heads


@pytest.fixture(scope="module")
def corpus():
    return corpora.load("webbnyheter2012")


@pytest.fixture(scope="module")
def exported(tiny_vectors, corpus, tmp_path_factory):
    """Tiny students of each encoder (best-model.pt), each exported beside itself."""
    folders = {}
    for family in EXPORTED:
        folder = tmp_path_factory.mktemp(family)
        _train(family, tiny_vectors, corpus).save(folder / "best-model.pt")
        tagger = models.load_tagger(str(folder / "best-model.pt"))
        export.export(tagger, folder / "best-model.pt", export.default_folder(folder / "best-model.pt"))
        folders[family] = folder
    return folders


def _spans(tagger, tokens):
    sentences = [Sentence(t) for t in tokens]
    tagger.predict(sentences, mini_batch_size=16)
    return [[(sp.tokens[0].idx - 1, sp.tokens[-1].idx, sp.get_label("ner").value) for sp in s.get_spans("ner")]
            for s in sentences]


@pytest.mark.parametrize("family", EXPORTED)
def test_export_gives_the_flair_models_tags(family, exported, corpus):
    from swener.data.tags import bioes_spans

    model = exported[family] / "best-model.pt"
    tagger = models.load_tagger(str(model))
    onnx = OnnxTagger(export.default_folder(model))
    assert onnx.card["family"] == family and json.loads(
        (export.default_folder(model) / "tagger.json").read_text())["source"]["path"] == str(model)
    tokens = [s.tokens for s in corpus.splits["test"][:120]] + [ODD, ["ensam"], ["x"] * 300]
    expected = _spans(tagger, tokens)
    tagged = onnx.tag_tokens(tokens, batch_size=16)
    assert [[(a, b, kind) for a, b, kind, _ in bioes_spans(t, s)] for t, s in tagged] == expected
    assert sum(map(len, expected)) > 50
    # emissions of the ONNX graph against torch's, at another batch size and lengths than the export sample
    batch = sorted(tokens[:40], key=len, reverse=True)
    ids = [tagger.embeddings.word_ids(t) for t in batch]
    ours, lengths = onnx.emissions([onnx.table.word_ids(t) for t in batch])
    with torch.no_grad():
        padded, torch_lengths = tagger._padded_ids(ids)
        theirs = tagger.emissions(tagger.embeddings.lookup(padded), torch_lengths).numpy()
    mask = np.arange(ours.shape[1])[None, :] < lengths[:, None]
    assert np.allclose(ours[mask], theirs[mask], atol=1e-5)


def test_exported_tagger_needs_neither_torch_nor_flair(exported, tmp_path):
    folder = export.default_folder(exported["bilstm-crf"] / "best-model.pt")
    source = tmp_path / "in.txt"
    source.write_text("Anna Berg bor i Umeå.\n", encoding="utf-8")
    code = f"""
import sys
import swener_cli
sys.argv = ["swener", "tag", {str(folder)!r}, {str(source)!r}, "--format", "jsonl"]
try:
    swener_cli.main()
except SystemExit as stop:
    assert not stop.code, stop.code
print("loaded:", sorted(m for m in ("torch", "flair", "transformers", "gensim") if m in sys.modules))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("SWENER_LAZY", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert json.loads(lines[0])["tokens"] == ["Anna", "Berg", "bor", "i", "Umeå", "."]
    assert lines[-1] == "loaded: []"


def _cli(*args, input=None):
    return CliRunner().invoke(main, list(map(str, args)), input=input)


def test_tag_with_the_export_reads_every_input_format(exported, tmp_path):
    model = exported["bilstm-crf"] / "best-model.pt"
    folder = export.default_folder(model)
    files = {"text": tmp_path / "in.txt", "tokens": tmp_path / "in.tok", "conll": tmp_path / "in.conll"}
    files["text"].write_bytes(TEXT.encode("utf-8"))
    files["tokens"].write_text(TOKENS, encoding="utf-8")
    files["conll"].write_text(CONLL, encoding="utf-8")
    packed = tmp_path / "in.txt.gz"
    packed.write_bytes(gzip.compress(TEXT.encode("utf-8")))
    for input_format, path in files.items():
        for output_format in ("conll", "jsonl", "inline"):
            args = ["tag", path, "--input-format", input_format, "--format", output_format]
            flair_out = _cli(args[0], model, *args[1:], "--engine", "flair")
            onnx_out = _cli(args[0], folder, *args[1:])
            assert flair_out.exit_code == 0 and onnx_out.exit_code == 0, (flair_out.output, onnx_out.output)
            assert onnx_out.stdout == flair_out.stdout and onnx_out.stdout.strip()
    several = _cli("tag", model, files["text"], "-", packed, "--engine", "onnx", "--format", "jsonl",
                   input=b"Eva bor i Kiruna.\n")
    assert several.exit_code == 0, several.output
    rows = [json.loads(line) for line in several.stdout.splitlines()]
    assert {r["file"] for r in rows} == {str(files["text"]), "<stdin>", str(packed)}
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert _cli("tag", folder, empty).stdout == ""


def test_pipelined_tagging_of_many_chunks_equals_one_call_and_fails_cleanly(exported, corpus, tmp_path):
    from swener.data.tags import bioes_spans
    from swener.serve import tagging

    folder = export.default_folder(exported["bilstm-crf"] / "best-model.pt")
    onnx = OnnxTagger(folder)
    sentences = [s.tokens for s in corpus.splits["test"][:700]]  # 3 chunks of 256 at batch size 2
    source = tmp_path / "in.tok"
    source.write_text("".join(" ".join(t) + "\n" for t in sentences), encoding="utf-8")
    items = tagging.read_items([str(source)], "tokens")
    piped = [[(e.start, e.end, e.type) for e in entities] for _, entities in tagging.tag_items(onnx, items, 2)]
    alone = [[(a, b, kind) for a, b, kind, _ in bioes_spans(t, s)]
             for t, s in OnnxTagger(folder).tag_tokens(sentences, batch_size=2)]
    assert piped == alone and sum(map(len, alone)) > 100
    # an error in the reader thread's third chunk: one line naming file and line, the old output kept
    out = tmp_path / "out.conll"
    out.write_bytes(b"old results\n")
    source.write_bytes(source.read_bytes() + b"trasig \xff rad\n")
    result = _cli("tag", folder, source, "--input-format", "tokens", "-o", out, "--batch-size", "2")
    assert result.exit_code == 1 and f"{source}:701: not UTF-8" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and out.read_bytes() == b"old results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tok", "out.conll"]


def test_onnx_engine_errors_are_one_line(exported, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "best-model.pt").write_bytes((exported["cnn"] / "best-model.pt").read_bytes())
    source = tmp_path / "in.txt"
    source.write_text("Anna bor i Umeå.\n", encoding="utf-8")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "tagger.json").write_text(json.dumps({"format": "swener-onnx-tagger"}))
    (broken / "model.onnx").write_bytes(b"not onnx")
    cases = [(("tag", plain / "best-model.pt", source, "--engine", "onnx"), "run `swener export"),
             (("tag", broken, source), "ONNX Runtime cannot load it"),
             (("tag", export.default_folder(exported["cnn"] / "best-model.pt"), source, "--precision", "bf16"),
              "runs in float32"),
             (("export", source), "not a tagger")]
    for args, message in cases:
        result = _cli(*args)
        assert result.exit_code == 1 and message in result.stderr, (args, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_int8_student_round_trips_and_bf16_variant_loads(exported, corpus, tmp_path):
    model = exported["bilstm-crf"] / "best-model.pt"
    tokens = [s.tokens for s in corpus.splits["test"][:80]] + [ODD]
    float_tagger = models.load_tagger(str(model))
    int8 = models.load_tagger(str(model), precision="int8")
    assert type(int8.encoder_net.lstm).__module__.startswith("torch.ao.nn.quantized.dynamic")
    saved = export.write_variant(models.load_tagger(str(model)), model, "int8")
    assert saved.name == "best-model.int8.pt"
    loaded = models.load_tagger(str(saved))
    assert type(loaded.encoder_net.lstm) is type(int8.encoder_net.lstm) and loaded.precision == "int8"
    assert loaded.tag_tokens(tokens) == int8.tag_tokens(tokens)
    with torch.no_grad():
        ids, lengths = int8._padded_ids([int8.embeddings.word_ids(t) for t in sorted(tokens, key=len, reverse=True)])
        assert torch.equal(int8.emissions(int8.embeddings.lookup(ids), lengths),
                           loaded.emissions(loaded.embeddings.lookup(ids), lengths))
    agree = [a == b for (x, _), (y, _) in zip(float_tagger.tag_tokens(tokens), loaded.tag_tokens(tokens))
             for a, b in zip(x, y)]
    assert sum(agree) / len(agree) > 0.9  # int8 rounding moves some near-ties of a barely trained model
    result = _cli("tag", saved, "--format", "inline", input="Anna bor i Umeå.\n".encode())
    assert result.exit_code == 0 and "Umeå" in result.stdout
    for precision in ("bf16", "int8"):
        result = _cli("evaluate", model, "--precision", precision, "--max-sentences", "20", "--json")
        assert result.exit_code == 0 and 0.0 <= json.loads(result.stdout)["micro_f1"] <= 1.0, result.output
    bf16 = export.write_variant(models.load_tagger(str(model)), model, "bf16")
    reloaded = flair.nn.Classifier.load(bf16)
    assert reloaded.precision == "bf16" and reloaded.card["precision"] == "bf16"
    with torch.no_grad():
        ids, lengths = reloaded._padded_ids([reloaded.embeddings.word_ids(t) for t in [ODD, ["Anna", "bor"]]])
        vectors = reloaded.embeddings.lookup(ids)
        with reloaded._inference_precision():
            low = reloaded.emissions(vectors, lengths).float()
        high = float_tagger.emissions(vectors, lengths)
    assert low.dtype == torch.float32 and torch.allclose(low, high, atol=0.05) and not torch.equal(low, high)
    with pytest.raises(SwenerError, match="reduced precision is for swener students"):
        quantize.apply_precision(object(), "bf16", "teacher.pt")


# --------------------------------------------------------------------------- sharing an export safely


def _tagged(folder, source):
    result = _cli("tag", folder, source, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_tagging_with_an_export_never_unpickles(exported, tmp_path, monkeypatch):
    import pickle

    from swener.serve import tagging

    folder = export.default_folder(exported["bilstm-crf"] / "best-model.pt")
    source = tmp_path / "in.txt"
    source.write_text("Anna Berg bor i Umeå.\nHon arbetar på Volvo i Göteborg.\n", encoding="utf-8")
    expected = _tagged(folder, source)

    def forbidden(*args, **kwargs):
        raise AssertionError("something unpickled while tagging with an export folder")

    class Unpickler:
        def __init__(self, *args, **kwargs):
            forbidden()

    loads = []
    real_load = np.load

    def checked_load(*args, **kwargs):
        loads.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    for name, value in (("load", forbidden), ("loads", forbidden), ("Unpickler", Unpickler)):
        monkeypatch.setattr(pickle, name, value)
    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(np, "load", checked_load)
    assert _tagged(folder, source) == expected and expected[0]["tokens"][0] == "Anna"
    tagger = models.load_tagger(str(folder))  # the library path
    summary = tagging.tag_files(tagger, [str(source)], tmp_path / "out.conll")
    assert summary.sentences == 2 and (tmp_path / "out.conll").read_text(encoding="utf-8").startswith("Anna\t")
    assert loads and all(flag is False for flag in loads)  # every array read says allow_pickle=False


class _Payload:
    """Unpickling it creates a file: proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_an_export_folder_with_a_pickle_in_it_is_refused_in_one_line(exported, tmp_path):
    import pickle
    import shutil

    original = export.default_folder(exported["cnn"] / "best-model.pt")
    source = tmp_path / "in.txt"
    source.write_text("Anna bor i Umeå.\n", encoding="utf-8")
    marker = tmp_path / "ran"

    def plant_npz(path, objects):
        np.savez(path, words=np.arange(3), objs=np.array([{"a": 1}, _Payload(marker)], dtype=object)
                 if objects else np.arange(4.0))

    plants = {
        "best-model.pt": lambda p: torch.save({"w": torch.zeros(2)}, p),
        "notes.pkl": lambda p: p.write_bytes(pickle.dumps(_Payload(marker))),
        "innocent.dat": lambda p: p.write_bytes(pickle.dumps(_Payload(marker), protocol=4)),
        "weights.zip": lambda p: torch.save({"w": torch.zeros(2)}, p),  # torch's zipped pickle under another name
        "extra/rows.npy": lambda p: np.save(p, np.array([_Payload(marker)], dtype=object), allow_pickle=True),
        "vectors.npz": lambda p: plant_npz(p, objects=True),  # the export's own vectors file replaced
    }
    for name, plant in plants.items():
        folder = tmp_path / f"shared-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(original, folder)
        target = folder / name
        target.parent.mkdir(exist_ok=True)
        plant(target)
        result = _cli("tag", folder, source)
        assert result.exit_code == 1 and result.stderr.startswith(f"error: {target}: "), (name, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "delete the file" in result.stderr and "swener export" in result.stderr, result.stderr
        with pytest.raises(SwenerError, match="must hold no pickle"):
            OnnxTagger(folder)
    assert not marker.exists()  # no planted pickle ran
    # what is no pickle is no reason to refuse: a text file and numeric arrays beside the export
    folder = tmp_path / "with-extras"
    shutil.copytree(original, folder)
    (folder / "README.txt").write_text("shared by Anna\n", encoding="utf-8")
    plant_npz(folder / "numbers.npz", objects=False)
    np.save(folder / "numbers.npy", np.arange(5))
    assert _tagged(folder, source) == _tagged(original, source)


def _layout_run(root, model, exported_results: dict):
    """models/bilstm-crf/kd/<settings>/seed-2/ with the model, a results.json and the teacher's teacher.json."""
    from pathlib import Path

    seed = Path(root) / "bilstm-crf" / "kd" / "quick-set-a0.5-T1" / "seed-2"
    seed.mkdir(parents=True)
    (seed / "best-model.pt").write_bytes(model.read_bytes())
    (seed / "results.json").write_text(json.dumps(exported_results))
    teacher = Path(root) / "teacher" / "webbnyheter2012" / "e5-small-fz-lb-bioes-ep1"
    teacher.mkdir(parents=True)
    (teacher / "teacher.json").write_text(json.dumps({"scores": {
        "webbnyheter2012/dev": {"micro_f1": 0.6441}, "webbnyheter2012/test": {"micro_f1": 0.6312}}}))
    return seed / "best-model.pt"


def test_an_export_carries_a_model_card_with_the_runs_numbers(exported, tmp_path):
    from test_model_names import REAL_RESULTS

    results = json.loads(json.dumps(REAL_RESULTS))
    results["settings"].update(family="bilstm-crf", alpha=0.5, temperature=2, kd_target="marginals", seed=2,
                               epochs=3)
    results.update(embeddings="embeddings/cbow-d100-e5-sample2M",
                   soft_labels="softlabels/webbnyheter2012/e5-small-fz-lb-bioes-ep1")
    results["scores"]["webbnyheter2012/dev"]["micro_f1"] = 0.5237
    results["scores"]["webbnyheter2012/test"]["micro_f1"] = 0.5101
    results["cost"]["tokens_per_second"] = 12345.6
    models_root = tmp_path / "models"
    model = _layout_run(models_root, exported["bilstm-crf"] / "best-model.pt", results)
    result = CliRunner().invoke(main, ["export", "bilstm-crf"], env={"SWENER_MODELS": str(models_root)})
    assert result.exit_code == 0, result.output
    folder = export.default_folder(model)
    assert result.stderr == (f"note: bilstm-crf: {model} (kd, quick profile (inferred), dev F1 0.5237; best on dev "
                             "of 1 bilstm-crf model)\n")
    assert result.stdout == f"wrote {folder} (model card: {folder / 'MODEL.md'})\n"
    card = (folder / "MODEL.md").read_text(encoding="utf-8")
    sections = [line for line in card.splitlines() if line.startswith("## ")]
    assert sections == ["## Safety", "## Data", "## Training", "## Scores", "## Speed", "## Teacher"]
    for expected in ("# bilstm-crf (knowledge distillation)", "licence CC BY 4.0",
                     "| webbnyheter2012/dev | 0.5237 |", "| webbnyheter2012/test | 0.5101 |",
                     "| uner-pud/test | 0.5120 |", "alpha 0.5, temperature 2, target marginals",
                     "Epochs 3,", "seed 2", "embeddings/cbow-d100-e5-sample2M", "12,346 tokens/s",
                     "Profile: quick (inferred from the settings)",
                     "Teacher: `webbnyheter2012/e5-small-fz-lb-bioes-ep1`", "Teacher dev F1 0.6441, test F1 0.6312",
                     "No file in this folder is code or a Python pickle"):
        assert expected in card, expected
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL.md", "model.onnx", "tagger.json", "vectors.npz"]
    tagged = _cli("tag", folder, "--format", "inline", input="Anna bor i Umeå.\n".encode())
    assert tagged.exit_code == 0 and "Umeå" in tagged.stdout  # the card is no obstacle to tagging
    # a model without a results.json beside it: the card says what is not known
    bare = export.model_card(exported["cnn"] / "best-model.pt", {"family": "cnn", "alpha": 0.0}, "0" * 64)
    assert "tokens/s: not measured" in bare and "| None/dev | not recorded |" in bare
    assert "Plain: trained on the gold labels only" in bare and "None: a plain model learns from no teacher" in bare
