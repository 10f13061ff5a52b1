"""The fast tagging path (issue 38): worker processes, the bulk tokeniser, int8 and the precision chooser
give the outputs of the one-process path, in order, and refuse what they cannot do."""
import json
from pathlib import Path

import pytest
from conftest import trained_tiny_student

from swener.data import corpora, tokenizer
from swener.errors import DataError, SwenerError
from swener.serve import pipeline, precision, tagging
from swener.serve.bench_tag import DEFAULT_TEXT
from swener.serve.onnx import OnnxTagger


@pytest.fixture(scope="module")
def exported(tiny_vectors, tmp_path_factory):
    """A tiny BiLSTM-CRF student after a few SGD steps, exported to ONNX."""
    from swener.serve.export import export

    tagger = trained_tiny_student(tiny_vectors)
    folder = tmp_path_factory.mktemp("student")
    tagger.save(folder / "best-model.pt")
    return export(tagger.eval(), folder / "best-model.pt", folder / "export")


def real_text() -> str:
    """Real Swedish text: the first lines of the shared regeringen text and the test split's sentences."""
    from swener.files import open_text

    lines = []
    if DEFAULT_TEXT.is_file():
        with open_text(DEFAULT_TEXT) as handle:
            lines = [line for _, line in zip(range(300), handle)]
    test = corpora.load("webbnyheter2012").splits["test"][:300]
    return "".join(lines) + "\n".join(" ".join(s.tokens) for s in test) + "\n"


def tag_both(folder, source: Path, tmp_path: Path, workers: int = 2, **kwargs) -> tuple[str, str]:
    """The output of the one-process path and of the worker pipeline for one input."""
    outputs = []
    for n in (1, workers):
        out = tmp_path / f"out-{n}.txt"
        tagging.tag_files(OnnxTagger(folder), [str(source)], out, progress=False, workers=n, **kwargs)
        outputs.append(out.read_text(encoding="utf-8"))
    return outputs[0], outputs[1]


@pytest.mark.parametrize("output_format", ["conll", "jsonl", "inline"])
@pytest.mark.parametrize("input_format", ["text", "tokens"])
def test_workers_give_the_one_process_output_on_real_text(exported, tmp_path, monkeypatch, output_format,
                                                          input_format):
    monkeypatch.setattr(pipeline, "CHUNK_CHARS", 2000)  # many chunks: order across workers is exercised
    source = tmp_path / "in.txt"
    source.write_text(real_text(), encoding="utf-8")
    one, many = tag_both(exported, source, tmp_path, 3, output_format=output_format, input_format=input_format)
    assert one == many and len(one.splitlines()) > 500


BAD_INPUTS = {
    "bom_crlf": "\ufeffAnna Berg bor i Umeå.\r\n\r\nHon träffade Per i Malmö!\r\n".encode(),
    "huge_line": ("Anna bor i Umeå och Per i Malmö " * 60_000).encode(),  # > MAX_LINE_BYTES: read in pieces
    "latin1": "Åsa bor i Göteborg.\nPer i Malmö.\n".encode("latin-1"),
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_workers_give_the_one_process_output_on_bad_inputs(exported, tmp_path, kind):
    source = tmp_path / "in.txt"
    source.write_bytes(BAD_INPUTS[kind])
    one, many = tag_both(exported, source, tmp_path, output_format="jsonl", errors="replace")
    assert one == many and one
    rows = [json.loads(line) for line in many.splitlines()]
    decoded = source.read_bytes().decode("utf-8", "replace")
    for row in rows:
        assert decoded[row["start"]:row["end"]] == row["text"]


@pytest.mark.parametrize("data,message", [(b"Anna\nPer\0\n", "binary data"), (b"Anna\n\xe5sa\n", "not UTF-8")])
def test_workers_refuse_what_the_one_process_path_refuses_and_write_nothing(exported, tmp_path, data, message):
    source = tmp_path / "in.txt"
    source.write_bytes(data + b"Anna bor i Umea.\n" * 5000)  # the error comes before the end: chunks in flight
    out = tmp_path / "out.conll"
    with pytest.raises(DataError, match=message) as err:
        tagging.tag_files(OnnxTagger(exported), [str(source)], out, progress=False, workers=2)
    assert ":2" in str(err.value) or "line 2" in str(err.value)
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_the_bulk_tokeniser_keeps_the_rules_on_the_test_split_and_odd_text():
    """sentence_tokens against tokenising each sentence span of each line one at a time (the rules' definition)."""
    test = corpora.load("webbnyheter2012").splits["test"]
    text = "\n".join(" ".join(s.tokens) for s in test) + "\ufeffT.ex. 5 000 kr\r\nbl.a. USA:s\u2028www.a.se x@y.se"
    expected, offset = [], 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if body.strip():
            for start, end in tokenizer._sentence_spans(body):
                found = [(m.group(), m.start() + start + offset, m.end() + start + offset)
                         for m in tokenizer._TOKEN.finditer(body[start:end])]
                if found:
                    expected.append(found)
        offset += len(line)
    got = [[(t, a, b) for t, (a, b) in zip(texts, spans)] for texts, spans in tokenizer.sentence_tokens(text)]
    assert got == expected and len(got) >= len(test)


def test_int8_tags_and_is_cached_beside_the_export(exported):
    tokens = [s.tokens for s in corpora.load("webbnyheter2012").splits["dev"][:50]]
    int8 = OnnxTagger(exported, precision="int8")
    assert (exported / precision.INT8_FILE).is_file() and int8.model_file.name == precision.INT8_FILE
    assert [len(t) for t, _ in int8.tag_tokens(tokens)] == [len(t) for t in tokens]
    with pytest.raises(SwenerError, match="no bf16 kernels"):
        OnnxTagger(exported, precision="bf16")


def test_the_chooser_takes_int8_only_where_checked_faster_and_within_the_f1_limit(tmp_path):
    vnni = {"avx512_vnni"}
    assert precision.choose(tmp_path, vnni)[0] == "float32"  # no check made
    check = {"cpu_flags": ["avx512_vnni"], "float32": {"dev_f1": 0.80, "tokens_per_second": 40_000},
             "int8": {"dev_f1": 0.798, "tokens_per_second": 80_000}}
    (tmp_path / precision.CHECK_FILE).write_text(json.dumps(check))
    chosen, why = precision.choose(tmp_path, vnni)
    assert chosen == "int8" and "0.7980" in why
    assert precision.choose(tmp_path, {"avx2"})[0] == "float32"  # a CPU without int8 dot products
    check["int8"]["dev_f1"] = 0.796  # 0.4 points lost
    (tmp_path / precision.CHECK_FILE).write_text(json.dumps(check))
    assert precision.choose(tmp_path, vnni) == ("float32", "float32 (int8 lost 0.40 F1 points on dev)")
    (tmp_path / precision.CHECK_FILE).write_text("{not json")
    assert precision.choose(tmp_path, vnni)[0] == "float32"


def test_chunks_keep_every_line_with_its_offset():
    lines = [(i + 1, f"rad {i}\n") for i in range(100)]
    got = list(pipeline.chunks(iter(lines), 50))
    assert [line for _, batch in got for line in batch] == lines
    text = "".join(line for _, line in lines)
    for offset, batch in got:
        assert text[offset:offset + len(batch[0][1])] == batch[0][1]
