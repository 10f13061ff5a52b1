"""`make bench`'s measuring code on a tiny student: the fields of bench.json, F1 against an independent scoring."""
import json
import sys
from argparse import Namespace

import flair
import pytest
import torch

import swener  # noqa: F401
from swener.data import corpora
from swener.eval import evaluate
from swener.eval.scoring import score
from swener.serve import bench
from swener.students.tagger import build_student
from swener.vectors.embeddings import CompactFastTextEmbeddings

FIELDS = {"name", "family", "variant", "tokens_per_second", "spread", "latency_ms", "peak_rss_mb", "size_bytes", "f1"}


@pytest.fixture(scope="module")
def model(tiny_vectors, tmp_path_factory):
    flair.set_seed(4)
    corpus = corpora.load("webbnyheter2012")
    tagger = build_student("cnn", CompactFastTextEmbeddings(tiny_vectors), corpus.types, hidden_size=8)
    with torch.no_grad():
        tagger.linear.bias[tagger.label_dictionary.get_idx_for_item("O")] -= 1.0
    path = tmp_path_factory.mktemp("bench") / "best-model.pt"
    tagger.save(path)
    return path


def test_one_run_writes_every_field_with_its_f1(model, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["swener.serve.bench"])
    args = Namespace(model=[f"cnn={model}"], corpus="webbnyheter2012", repeats=2, batch_size=32, threads=1,
                     bf16=False, variants=["float32", "onnx"])
    result = bench.bench_all(args)
    rows = result["models"]
    assert [r["variant"] for r in rows] == ["float32", "onnx"]
    for row in rows:
        assert FIELDS <= set(row) and row["family"] == "cnn" and row["name"] == "cnn"
        assert row["tokens_per_second"] > 0 and row["spread"] >= 0 and row["peak_rss_mb"] > 10
        assert len(row["runs_tokens_per_second"]) == 2
    # F1 as the scorer gives it for this model's own predictions (the ONNX export tags alike)
    test = corpora.load("webbnyheter2012").splits["test"]
    tagger = flair.nn.Classifier.load(model)
    expected = score([s.tags for s in test], evaluate.predict_tags(tagger, test),
                     types={"LOC", "MISC", "ORG", "PER"}).micro_f1
    assert rows[0]["f1"] == round(expected, 4) == rows[1]["f1"]
    assert rows[1]["size_bytes"] > 0 and rows[0]["size_bytes"] == model.stat().st_size
    assert rows[1]["peak_rss_mb"] < rows[0]["peak_rss_mb"]  # the ONNX child never imports torch or Flair
    json.dumps(result)  # what bench.json holds
