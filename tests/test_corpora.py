"""Corpus readers, IO -> IOB2, the Webbnyheter quirks, checksums and bad input."""
import json
from pathlib import Path

import pytest

from swener.data import corpora, readers
from swener.data.tags import io_to_iob2, repair_iob2, spans
from swener.errors import DataError


@pytest.fixture(scope="module")
def webbnyheter():
    return corpora.load("webbnyheter2012")


def test_io_to_iob2_runs_and_type_changes():
    assert io_to_iob2(["PER", "PER", None, "LOC", "ORG", "ORG", None, "MISC"]) == [
        "B-PER", "I-PER", "O", "B-LOC", "B-ORG", "I-ORG", "O", "B-MISC"]
    # adjacent tokens of one type are one entity: the IO limit, not a bug
    assert spans(io_to_iob2(["PER", "PER", "PER"])) == [("PER", 0, 3)]


def test_spans_and_repair():
    assert spans(["B-PER", "I-PER", "B-PER", "O", "I-LOC"]) == [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5)]
    assert repair_iob2(["I-LOC", "I-LOC", "O", "B-PER", "I-ORG"]) == (
        ["B-LOC", "I-LOC", "O", "B-PER", "B-ORG"], 2)


def test_webbnyheter_counts_and_quirks(webbnyheter):
    stats = corpora.stats(webbnyheter)["splits"]
    assert stats["train"]["sentences"] + stats["dev"]["sentences"] == 6885
    assert stats["train"]["entities"] + stats["dev"]["entities"] == 4200
    assert stats["train"]["tokens"] + stats["dev"]["tokens"] == 113125 - 1  # 'bn' dropped
    assert stats["test"]["sentences"] == 2453 - 23
    notes = " ".join(stats["train"]["notes"])
    assert "line 90310" in notes and "'bn'" in notes and "mixed separators" in notes
    test_notes = " ".join(stats["test"]["notes"])
    assert "dropped 23 test sentences (17 distinct)" in test_notes
    assert "10 test sentences repeat" in test_notes
    train_tokens = {tuple(s.tokens) for s in webbnyheter.splits["train"] + webbnyheter.splits["dev"]}
    assert not any(tuple(s.tokens) in train_tokens for s in webbnyheter.splits["test"])
    assert all(t == "O" or t[:2] in ("B-", "I-") for s in webbnyheter.splits["test"] for t in s.tags)


def test_dev_split_is_deterministic(webbnyheter):
    again = corpora.load("webbnyheter2012")
    assert [s.tokens for s in again.splits["dev"]] == [s.tokens for s in webbnyheter.splits["dev"]]
    assert len(webbnyheter.splits["dev"]) == round(6885 * 0.1)


def test_uner_real_files():
    pud = corpora.stats(corpora.load("uner-pud"))["splits"]["test"]
    assert (pud["sentences"], pud["entities"]) == (1000, 1029)
    assert pud["entities_per_type"] == {"LOC": 442, "ORG": 162, "PER": 425}
    talbanken = corpora.stats(corpora.load("uner-talbanken"))["splits"]
    assert [talbanken[s]["sentences"] for s in ("train", "dev", "test")] == [4303, 504, 1219]
    assert [talbanken[s]["entities"] for s in ("train", "dev", "test")] == [967, 23, 196]


def test_suc_reader_maps_types(tmp_path):
    rows = [
        {"tokens": ["Anna", "Berg", "bor", "i", "Umeå", "."], "ner_tags": ["B-PRS", "I-PRS", "O", "O", "B-LOC", "O"]},
        {"tokens": ["Volvo", "köpte", "Röda", "rummet", "i", "maj"],
         "ner_tags": ["B-ORG", "O", "B-WRK", "I-WRK", "O", "B-TME"]},
        {"tokens": ["Hunden", "Fido", "såg", "OS", "och", "5", "kg"],
         "ner_tags": ["O", "B-animal", "O", "B-EVN", "O", "B-MSR", "I-MSR"]},
    ]
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    suc = corpora.load_suc3(tmp_path)
    first, second, third = suc.splits["train"]
    assert first.tags == ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]
    assert second.tags == ["B-ORG", "O", "B-MISC", "I-MISC", "O", "O"]
    assert third.tags == ["O", "B-PER", "O", "B-MISC", "O", "O", "O"]
    assert "MSR 1" in suc.notes["train"][0] and "TME 1" in suc.notes["train"][0]
    (tmp_path / "test.jsonl").write_text(json.dumps({"tokens": ["x"], "ner_tags": ["B-FOO"]}), encoding="utf-8")
    with pytest.raises(DataError, match=r"test.jsonl:1: unknown SUC tag 'B-FOO'"):
        corpora.load_suc3(tmp_path)


def test_conll_folder_and_io(tmp_path):
    (tmp_path / "train.txt").write_text("Anna PER\nbor O\ni O\nLund LOC\n\n" * 20, encoding="utf-8")
    (tmp_path / "test.txt").write_text("Olof B-PER\nPalme I-PER\n", encoding="utf-8")
    corpus = corpora.load(str(tmp_path))
    assert set(corpus.splits) == {"train", "dev", "test"} and len(corpus.splits["dev"]) == 2
    assert corpus.splits["train"][0].tags == ["B-PER", "O", "O", "B-LOC"]
    assert corpus.splits["test"][0].tags == ["B-PER", "I-PER"]
    assert corpus.types == ("LOC", "PER")


def _bad(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "bad.iob2"
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("content,message", [
    (b"1\tAnna\tB-PER\t-\t-\n2\tbor\tO\n", r"bad.iob2:2: expected 5 tab-separated columns"),
    (b"1\tAnna\tB-XYZ\t-\t-\n", r"bad.iob2:1: unknown tag 'B-XYZ'"),
    (b"1\tAnna\tO\t-\t-\n2\tG\xf6teborg\tB-LOC\t-\t-\n", r"bad.iob2:2: not UTF-8"),
])
def test_uner_bad_input_names_file_and_line(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        readers.read_uner(_bad(tmp_path, content), [], ("PER", "LOC", "ORG"))


def test_webbnyheter_wrong_columns(tmp_path):
    path = tmp_path / "train_corpus.txt"
    path.write_text("Anna PER\nbor\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train_corpus.txt:2: expected 2 columns"):
        readers.read_webbnyheter(path, [])


def test_checksum_mismatch_and_missing(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "ner" / "x").mkdir(parents=True)
    (mirror / "ner" / "x" / "f.txt").write_text("tampered", encoding="utf-8")
    monkeypatch.setenv("SWENER_DATA", str(mirror))
    monkeypatch.setattr(corpora, "CORPORA_DIR", tmp_path / "corpora")
    source = corpora.SourceFile("ner/x/f.txt", "file:///nonexistent/f.txt", "0" * 64)
    with pytest.raises(DataError, match=r"f.txt: sha256 mismatch"):
        corpora.fetch(source, "x")
    assert not (tmp_path / "corpora" / "x" / "f.txt").exists()
    missing = corpora.SourceFile("ner/x/g.txt", "file:///nonexistent/g.txt", "0" * 64)
    with pytest.raises(DataError, match=r"g.txt: missing, and download .* failed"):
        corpora.fetch(missing, "x")


def test_to_flair_spans(webbnyheter):
    sentences = corpora.to_flair_sentences(webbnyheter.splits["test"][:50])
    for tagged, sentence in zip(webbnyheter.splits["test"][:50], sentences):
        got = [(s.get_label("ner").value, s.tokens[0].idx - 1, s.tokens[-1].idx)
               for s in sentence.get_spans("ner")]
        assert got == spans(tagged.tags)


def test_suc_reader_takes_bare_io_tags_and_compound_types(tmp_path):
    """The published sucx3_ner style: bare IO types, TME/MSR/WRK/EVN/OBJ, compound metonymy types."""
    rows = [
        {"tokens": ["Anna", "Berg", "bor", "i", "Umeå", "sedan", "i", "går", "."],
         "ner_tags": ["PRS", "PRS", "O", "O", "LOC", "O", "TME", "TME", "O"]},
        {"tokens": ["Sverige", "slog", "Norge", "i", "VM", "med", "3", "mål"],
         "ner_tags": ["LOCPRS", "O", "LOCORG", "O", "EVN", "O", "MSR", "MSR"]},
        {"tokens": ["Volvo", "Göteborg", "läste", "Röda", "rummet", "på", "en", "iPhone"],
         "ner_tags": ["ORGPRS", "LOC", "O", "WRK", "WRK", "O", "O", "OBJ"]},
        {"tokens": ["Stockholm", "Uppsala", "och", "Lund"], "ner_tags": ["LOC", "LOC", "O", "B-LOCPRS"]},
    ]
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    suc = corpora.load_suc3(tmp_path)
    first, second, third, fourth = suc.splits["train"]
    assert first.tags == ["B-PER", "I-PER", "O", "O", "B-LOC", "O", "O", "O", "O"]
    assert second.tags == ["B-LOC", "O", "B-LOC", "O", "B-MISC", "O", "O", "O"]
    assert third.tags == ["B-ORG", "B-LOC", "O", "B-MISC", "I-MISC", "O", "O", "B-MISC"]
    # a maximal run of one bare type is one entity (as for Webbnyheter 2012)
    assert fourth.tags == ["B-LOC", "I-LOC", "O", "B-LOC"]
    notes = " | ".join(suc.notes["train"])
    assert "TME 1" in notes and "MSR 1" in notes
    assert "LOCPRS 2" in notes and "LOCORG 1" in notes and "ORGPRS 1" in notes
    assert "maximal run of one tag is one entity" in notes
    stats = corpora.stats(suc)["splits"]["train"]
    assert stats["entities_per_type"] == {"LOC": 6, "MISC": 3, "ORG": 1, "PER": 1}

    (tmp_path / "dev.jsonl").write_text(json.dumps({"tokens": ["a", "b"], "ner_tags": ["O", "LOCFOO"]}) + "\n",
                                        encoding="utf-8")
    with pytest.raises(DataError, match=r"dev.jsonl:1: unknown SUC tag 'LOCFOO'"):
        corpora.load_suc3(tmp_path)


def test_suc_stats_on_the_command_line_is_one_line_for_an_unknown_tag(tmp_path):
    from click.testing import CliRunner

    from swener.cli import main

    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.jsonl").write_text(json.dumps({"tokens": ["Umeå", "i", "maj"],
                                                             "ner_tags": ["LOC", "O", "TME"]}) + "\n",
                                                 encoding="utf-8")
    ok = CliRunner().invoke(main, ["corpus", "stats", "suc3", "--json"], env={"SWENER_SUC3": str(tmp_path)})
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["splits"]["test"]["entities"] == 1
    (tmp_path / "train.jsonl").write_text(json.dumps({"tokens": ["x"], "ner_tags": ["XYZ"]}) + "\n", encoding="utf-8")
    bad = CliRunner().invoke(main, ["corpus", "stats", "suc3"], env={"SWENER_SUC3": str(tmp_path)})
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith(f"error: {tmp_path / 'train.jsonl'}:1: unknown SUC tag 'XYZ'")
