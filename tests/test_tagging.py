"""Tagging files: input and output formats, character offsets, bad input, atomic output,
short model names, and a trained student inside a plain Flair pipeline."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import trained_tiny_student

from swener.cli import main
from swener.errors import DataError, SwenerError
from swener.serve import names as models
from swener.serve import tagging


class CapitalTagger:
    """A stand-in tagger whose predictions the tests control: each run of capitalised tokens is a PER."""

    def predict(self, sentences, mini_batch_size=32, label_name="ner", **kwargs):
        for sentence in sentences:
            tokens, i = sentence.tokens, 0
            while i < len(tokens):
                j = i
                while j < len(tokens) and tokens[j].text[:1].isupper():
                    j += 1
                if j > i:
                    sentence[i:j].add_label(label_name, "PER", 0.75)
                i = max(j, i + 1)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """`swener tag` sets one torch thread (in-process here); the setting is put back for other test modules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def student(tiny_vectors, tmp_path_factory):
    """A tiny BiLSTM-CRF student after a few SGD steps (best-model.pt), and a copy biased to tag every token S-LOC."""
    tagger = trained_tiny_student(tiny_vectors)
    tagger.eval()
    folder = tmp_path_factory.mktemp("student")
    tagger.save(folder / "best-model.pt")
    with torch.no_grad():
        tagger.linear.bias[tagger.label_dictionary.get_idx_for_item("S-LOC")] += 100.0
    tagger.save(folder / "all-loc.pt")
    return folder


def cli(*args, input=None, env=None):
    return CliRunner().invoke(main, list(map(str, args)), input=input, env=env)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def tag(tmp_path, data: bytes, output_format="jsonl", input_format="text", **kwargs) -> str:
    source = write(tmp_path / "in.txt", data)
    out = tmp_path / "out.txt"
    tagging.tag_files(CapitalTagger(), [str(source)], out, output_format, input_format, progress=False, **kwargs)
    return out.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- formats and offsets

TRICKY = ("\ufeffAnna Berg bor i Umeå.\r\n\r\n  \t\r\nHon träffade Per Albin Hansson 5 000 gånger i Malmö och "
          "Lund!\r\nÄlvsbyn\u2028Ödeshög\rTomt:\u00a0Kiruna 😀 Luleå\n\nSista Raden utan radslut")


def test_text_offsets_slice_the_input_with_bom_crlf_and_odd_line_breaks(tmp_path):
    output = tag(tmp_path, TRICKY.encode("utf-8"))
    decoded = open(tmp_path / "in.txt", encoding="utf-8", newline="").read()
    rows = [json.loads(line) for line in output.splitlines()]
    entities = [e for row in rows for e in row["entities"]]
    assert [e["text"] for e in entities] == ["Anna Berg", "Umeå", "Hon", "Per Albin Hansson", "Malmö", "Lund",
                                             "Älvsbyn", "Ödeshög", "Tomt", "Kiruna", "Luleå", "Sista Raden"]
    for row in rows:
        assert decoded[row["start"]:row["end"]] == row["text"]
        for entity in row["entities"]:
            assert decoded[entity["start"]:entity["end"]] == entity["text"]
            first, last = entity["token_span"]
            assert entity["text"].split() == row["tokens"][first:last]
            assert entity["type"] == "PER" and entity["confidence"] == 0.75
    assert [(r["line"], r["tokens"][0]) for r in rows][:3] == [(1, "Anna"), (4, "Hon"), (5, "Älvsbyn")]
    assert rows[1]["tokens"][5] == "5 000"  # a tokeniser token with a space in it
    assert rows[-1]["text"] == "Sista Raden utan radslut"


def test_output_formats(tmp_path):
    data = "Anna Berg bor i Umeå .\nHej\n".encode()
    assert tag(tmp_path, data, "inline", "tokens") == "[Anna Berg]PER bor i [Umeå]PER .\n[Hej]PER\n"
    conll = tag(tmp_path, data, "conll", "tokens")
    assert conll == ("Anna\tB-PER\nBerg\tI-PER\nbor\tO\ni\tO\nUmeå\tB-PER\n.\tO\n\nHej\tB-PER\n\n")
    row = json.loads(tag(tmp_path, data, "jsonl", "tokens").splitlines()[0])
    assert row == {"file": str(tmp_path / "in.txt"), "line": 1, "text": "Anna Berg bor i Umeå .",
                   "tokens": ["Anna", "Berg", "bor", "i", "Umeå", "."],
                   "entities": [{"type": "PER", "text": "Anna Berg", "token_span": [0, 2], "confidence": 0.75},
                                {"type": "PER", "text": "Umeå", "token_span": [4, 5], "confidence": 0.75}]}


def test_tokens_and_conll_input(tmp_path):
    tokens = tag(tmp_path, b"  Anna  bor\ti Ume\xc3\xa5  \r\n\r\n\n. \n", "inline", "tokens")
    assert tokens == "[Anna]PER bor i [Umeå]PER\n.\n"
    conll = (b"-DOCSTART- -X- O\n\nAnna PER x\nbor O x\n\n\n5 000\tO\tNUM\nUme\xc3\xa5\tLOC\n"
             b"Malm\xc3\xb6 LOC\n")  # blank- and tab-separated rows, blank lines, no final blank line
    assert tag(tmp_path, conll, "inline", "conll") == "[Anna]PER bor\n5 000 [Umeå Malmö]PER\n"
    rows = [json.loads(line) for line in tag(tmp_path, conll, "jsonl", "conll").splitlines()]
    assert [r["line"] for r in rows] == [3, 7] and "start" not in rows[0]


def test_several_files_and_stdin(tmp_path, student):
    first = write(tmp_path / "a.txt", "Anna bor i Umeå.\n".encode())
    second = write(tmp_path / "b.txt", "Per bor i Lund.\n".encode())
    result = cli("tag", student / "all-loc.pt", first, "-", second, "--format", "jsonl",
                 input="Eva bor i Kiruna.\n".encode())
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["file"], r["tokens"][0]) for r in rows] == [(str(first), "Anna"), ("<stdin>", "Eva"),
                                                            (str(second), "Per")]
    # the biased student tags every token as a one-token LOC, so every token's offsets are checked
    assert all(e["type"] == "LOC" for r in rows for e in r["entities"])
    assert all([e["text"] for e in r["entities"]] == r["tokens"] for r in rows)
    assert result.stderr == ""  # no progress bar or summary when stderr is not a terminal


# --------------------------------------------------------------------------- bad input


def test_empty_input_gives_empty_output(tmp_path, student):
    empty = write(tmp_path / "empty.txt", b"")
    blank = write(tmp_path / "blank.txt", b"\xef\xbb\xbf\r\n \n\t\n")
    out = tmp_path / "out.conll"
    for source in (empty, blank):
        result = cli("tag", student, source, "-o", out)
        assert result.exit_code == 0 and out.read_bytes() == b""
    result = cli("tag", student, "--format", "jsonl", input=b"")
    assert result.exit_code == 0 and result.stdout == ""


def test_long_lines_are_split_never_dropped(tmp_path, monkeypatch):
    words = [f"Ord{i}" if i % 7 == 0 else f"ord{i}" for i in range(1000)]
    rows = [json.loads(line) for line in tag(tmp_path, " ".join(words).encode(), max_tokens=100).splitlines()]
    assert [len(r["tokens"]) for r in rows] == [100] * 10
    assert [t for r in rows for t in r["tokens"]] == words
    # a line longer than the read limit comes in pieces; offsets still index the input
    monkeypatch.setattr(tagging, "MAX_LINE_BYTES", 64)
    text = "Åsa från Öland åt ärtsoppa i Växjö med Örjan. " * 20 + "ÅÄÖåäö" * 30 + "\nEn Rad till\n"
    rows = [json.loads(line) for line in tag(tmp_path, text.encode()).splitlines()]
    decoded = open(tmp_path / "in.txt", encoding="utf-8", newline="").read()
    assert "".join(t for r in rows for t in r["tokens"]) == "".join(text.split())
    for entity in (e for r in rows for e in r["entities"]):
        assert decoded[entity["start"]:entity["end"]] == entity["text"]
    assert rows[-1]["line"] == 2 and rows[-2]["line"] == 1


def test_read_lines_cuts_at_character_boundaries():
    line = ("å" * 50 + " ").encode() + "ö".encode() * 100 + b"\n"
    pieces = list(tagging.read_lines(io.BytesIO(line + b"sista"), "x", max_bytes=33))
    assert "".join(text for _, text in pieces) == line.decode() + "sista"
    assert {n for n, _ in pieces[:-1]} == {1} and pieces[-1] == (2, "sista")
    assert all(len(text.encode()) <= 33 for _, text in pieces)


def test_not_utf8_is_an_error_with_the_line_or_replaced(tmp_path, student):
    source = write(tmp_path / "latin1.txt", "Anna bor i Umeå.\nGöteborg är fint.\n".encode("latin-1"))
    result = cli("tag", student, source)
    assert result.exit_code == 1
    assert result.stderr == f"error: {source}:1: not UTF-8 (byte 0xe5 at byte 15 of the line); fix the encoding " \
                            "or use --errors replace\n"
    result = cli("tag", student, source, "--errors", "replace", "--format", "inline")
    assert result.exit_code == 0 and "Ume \ufffd" in result.stdout and "\ufffd teborg" in result.stdout
    with pytest.raises(DataError, match=r"<stdin>:2: not UTF-8"):
        list(tagging.read_lines(io.BytesIO(b"ok\nG\xf6teborg\n"), "<stdin>"))


def test_binary_input_is_a_clear_error(tmp_path, student):
    for name, data in (("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
                       ("utf16.txt", "Anna bor i Umeå.\n".encode("utf-16"))):
        result = cli("tag", student, write(tmp_path / name, data))
        assert result.exit_code == 1 and "binary data (a NUL byte), not UTF-8 text" in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_missing_or_wrong_model_and_input(tmp_path, student):
    text = write(tmp_path / "in.txt", b"Anna bor i Ume\xc3\xa5.\n")
    notes = write(tmp_path / "notes.pt", b"not a model\n")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "dict.pt")
    cases = [(("tag", tmp_path / "missing.pt", text), "missing.pt: no such model file"),
             (("tag", "bilstm-crf-large", text), "short names are bilstm-crf"),
             (("tag", tmp_path, text), "no such model file"),
             (("tag", notes, text), "not a tagger (a torch model file is expected)"),
             (("tag", tmp_path / "dict.pt", text), "dict.pt: not a flair tagger"),
             (("tag", student, tmp_path / "nope.txt"), "nope.txt: no such file"),
             (("tag", student, text, "-o", tmp_path / "no" / "out.txt"), "no such folder")]
    for args, message in cases:
        result = cli(*args)
        assert result.exit_code == 1 and message in result.stderr, (args, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_failure_midway_leaves_the_old_output(tmp_path, student):
    out = write(tmp_path / "out.conll", b"old results\n")
    lines = "".join(f"Mening nummer {i} om Umeå.\n" for i in range(300)).encode() + b"trasig \xff rad\n"
    source = write(tmp_path / "in.txt", lines)
    result = cli("tag", student, source, "-o", out, "--batch-size", "2")  # the first chunks are written first
    assert result.exit_code == 1 and f"{source}:301: not UTF-8" in result.stderr
    assert out.read_bytes() == b"old results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.conll"]  # no temporary file left
    source.write_bytes(lines[: -len(b"trasig \xff rad\n")])
    assert cli("tag", student, source, "-o", out).exit_code == 0
    assert out.read_text(encoding="utf-8").count("\n\n") == 300
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- short names


def _fake_run(root: Path, model: Path, family: str, kind: str, run: str, seed: int, dev: float,
              max_sentences=None, written: float = 1e9) -> Path:
    folder = root / family / kind / run / f"seed-{seed}"
    folder.mkdir(parents=True)
    (folder / "best-model.pt").symlink_to(model)
    results = folder / "results.json"
    results.write_text(json.dumps({
        "settings": {"family": family, "alpha": 0.5 if kind == "kd" else 0.0, "temperature": 2.0, "seed": seed,
                     "max_sentences": max_sentences},
        "corpus": "webbnyheter2012", "soft_labels": "softlabels/webbnyheter2012/e5-small-ep3" if kind == "kd" else None,
        "scores": {"webbnyheter2012/dev": {"micro_f1": dev}, "webbnyheter2012/test": {"micro_f1": dev - 0.1}},
        "counts": {}, "cost": {}}))  # the keys swener.runs.StudentResults requires
    os.utime(results, (written, written))
    return folder / "best-model.pt"


def test_short_names_pick_the_best_on_dev_of_the_runs_on_whole_splits(tmp_path, student):
    model = student / "best-model.pt"
    best = _fake_run(tmp_path, model, "bilstm-crf", "kd", "old", 1, 0.9, written=1e9)
    _fake_run(tmp_path, model, "bilstm-crf", "kd", "new", 1, 0.7, written=2e9)
    _fake_run(tmp_path, model, "bilstm-crf", "plain", "new", 2, 0.8, written=2e9)
    _fake_run(tmp_path, model, "bilstm-crf", "kd", "quick", 1, 0.95, max_sentences=500, written=3e9)  # a slice
    plain = _fake_run(tmp_path, model, "cnn", "plain", "quick", 1, 0.5, max_sentences=500)
    notes = []
    assert models.resolve("bilstm-crf", tmp_path, notes.append) == best
    assert models.resolve("cnn", tmp_path, notes.append) == plain  # only a slice: it is all there is
    assert notes == [f"bilstm-crf: {best} (kd, full profile (inferred), dev F1 0.9000; best on dev of 3 bilstm-crf "
                     "models; 1 not comparable (a slice or another corpus))",
                     f"cnn: {plain} (plain, full profile (inferred), dev F1 0.5000; best on dev of 1 cnn model)"]
    with pytest.raises(SwenerError, match="cnn-kd: no trained model of that name"):
        models.resolve("cnn-kd", tmp_path)
    assert models.resolve(str(model), tmp_path) == model  # a path is a path
    teacher = tmp_path / "teacher" / "webbnyheter2012" / "e5-small-n40"
    teacher.mkdir(parents=True)
    (teacher / "best-model.pt").write_bytes(b"")
    (teacher / "training.json").write_text(json.dumps({"max_sentences": 40, "seed": 1, "epochs": 1}))
    assert models.resolve("teacher", tmp_path, notes.append) == teacher / "best-model.pt"

    env = {"SWENER_MODELS": str(tmp_path)}
    listing = cli("models", env=env)
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()
    row = next(line for line in lines if line.split()[0] == "bilstm-crf")
    assert "0.9000" in row and " kd " in row and "CC BY 4.0" in row and str(best) in row
    assert any(line.split()[0] == "cnn" and "n=500" in line for line in lines)
    assert "teacher: webbnyheter2012/e5-small-ep3" in listing.stdout
    cards = json.loads(cli("models", "--all", "--json", env=env).stdout)
    assert len(cards) == 6 and sum(c["picked"] for c in cards) == 3
    tagged = cli("tag", "bilstm-crf", "--format", "inline", input="Anna bor i Umeå.\n".encode(), env=env)
    assert tagged.exit_code == 0 and "Umeå" in tagged.stdout and tagged.stderr == f"note: {notes[0]}\n"
    scored = cli("evaluate", "bilstm-crf", "--corpus", "uner-pud", "--max-sentences", "5", "--json", env=env)
    assert scored.exit_code == 0 and "micro_f1" in json.loads(scored.stdout)


# --------------------------------------------------------------------------- a Flair pipeline


def test_student_in_a_plain_flair_pipeline(student):
    """In a fresh interpreter: `import swener` is all it takes for Flair to load a student."""
    code = f"""
import json
import flair
import swener
from flair.splitter import SegtokSentenceSplitter

tagger = flair.nn.Classifier.load({str(student / "all-loc.pt")!r})
sentences = SegtokSentenceSplitter().split("Anna Berg bor i Umeå. Hon arbetar på Volvo i Göteborg.")
tagger.predict(sentences)
print(json.dumps({{"class": type(tagger).__name__, "card": tagger.card,
                  "spans": [[(span.text, span.get_label("ner").value) for span in s.get_spans("ner")]
                            for s in sentences]}}))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("SWENER_LAZY", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["class"] == "StudentTagger" and found["card"]["family"] == "bilstm-crf"
    assert [[text for text, _ in spans] for spans in found["spans"]] == [
        ["Anna", "Berg", "bor", "i", "Umeå", "."], ["Hon", "arbetar", "på", "Volvo", "i", "Göteborg", "."]]
    assert {kind for spans in found["spans"] for _, kind in spans} == {"LOC"}
