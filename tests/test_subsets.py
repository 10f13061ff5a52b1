"""Gold subsets and the held-back pool (issue 36): nested and deterministic subsets, a pool of tokens only that
comes back through the transfer-cache machinery as the corpus's own tokens, and a gold-N teacher (bf16 too)."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from swener import config
from swener.cli import main
from swener.data import corpora
from swener.data.readers import TaggedSentence
from swener.data.subsets import gold_subset, held_back, parse_gold, split_indices
from swener.data.tokens import read_tokens, write_tokens
from swener.errors import DataError, SwenerError
from swener.kd import softlabels
from swener.teacher import run as teacher
from swener.teacher.gold import scaled_schedule, teacher_gold

CORPUS = "webbnyheter2012"


@pytest.fixture(scope="module")
def corpus():
    return corpora.load(CORPUS)


def test_subsets_are_nested_deterministic_and_disjoint_from_the_pool(corpus):
    train = corpus.splits["train"]
    total = len(train)
    small, large = gold_subset(corpus, 250), gold_subset(corpus, 1000)
    assert len(small.splits["train"]) == 250 and len(large.splits["train"]) == 1000
    assert small.splits["train"] == large.splits["train"][:250]  # nested: the smaller is the larger's start
    assert gold_subset(corpora.load(CORPUS), 250).splits["train"] == small.splits["train"]  # deterministic
    assert small.splits["dev"] is corpus.splits["dev"] and small.splits["test"] is corpus.splits["test"]
    assert len(corpus.splits["train"]) == total  # the loaded corpus is not changed
    keep, held = split_indices(total, 250, CORPUS)
    assert not set(keep) & set(held) and sorted(keep + held) == list(range(total))
    assert [train[i] for i in held] == held_back(corpus, 250)
    assert keep != list(range(250))  # a shuffle, not the corpus's first sentences
    # another seed is another subset: the constant decides it
    assert split_indices(total, 250, CORPUS, seed=config.GOLD_SEED + 1)[0] != keep
    assert gold_subset(corpus, None) is corpus and held_back(corpus, None) == []


def test_bad_gold_sizes_are_one_clear_error(corpus):
    total = len(corpus.splits["train"])
    with pytest.raises(SwenerError, match=f"has only {total} sentences; give at most {total}"):
        gold_subset(corpus, total + 1)
    assert parse_gold("all") is None and parse_gold("250") == 250
    for bad in ("0", "-3", "many"):
        with pytest.raises(SwenerError, match="number of gold train sentences"):
            parse_gold(bad)
    result = CliRunner().invoke(main, ["teacher", "train", "--gold", str(total + 1), "--out", "x"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert f"--gold {total + 1}: {CORPUS}'s train split has only {total}" in result.output


def test_held_back_pool_is_tokens_only_and_reads_back_as_the_same_tokens(corpus, tmp_path):
    pool = tmp_path / "pool.tokens"
    result = CliRunner().invoke(main, ["corpus", "held-back", "--gold", "250", "--out", str(pool)])
    assert result.exit_code == 0, result.output
    expected = [s.tokens for s in held_back(corpus, 250)]
    assert teacher.read_text_sentences(pool) == expected  # the transfer machinery's reader, no tokeniser
    assert teacher.read_text_sentences(pool, 7) == expected[:7]
    # only tokens: the same sentences with other tags write the same bytes
    relabelled = corpora.NERCorpus(corpus.name, {**corpus.splits, "train": [
        TaggedSentence(s.tokens, ["B-PER"] * len(s.tokens)) for s in corpus.splits["train"]]}, corpus.types)
    again = tmp_path / "again.tokens.gz"
    write_tokens(again, (s.tokens for s in held_back(relabelled, 250)))
    assert read_tokens(again) == expected
    assert pool.read_text(encoding="utf-8") == "".join("\n".join(t) + "\n\n" for t in expected)
    # a raw-text name would be tokenised again: refused
    with pytest.raises(DataError, match="must be named"):
        write_tokens(tmp_path / "pool.txt", expected)
    with pytest.raises(DataError, match="sentence 2: token"):
        write_tokens(tmp_path / "bad.tokens", [["a"], ["b", " "]])


def test_scaled_schedule_reaches_the_minimum_updates():
    assert scaled_schedule(10, 2, 6197, 16, 2000) == (10, 2, 1)  # 388 a epoch: 3,880 already
    epochs, patience, factor = scaled_schedule(10, 2, 250, 16, 2000)  # 16 updates an epoch
    assert factor == 13 and (epochs, patience) == (130, 26) and epochs * 16 >= 2000 > (epochs - 10) * 16
    assert scaled_schedule(10, 2, 250, 16, None) == (10, 2, 1)


@pytest.fixture(scope="module")
def gold_teacher(tiny_backbone, tmp_path_factory, monkeypatch_module):
    """A teacher trained on the gold subset of 40 in bf16 autocast; records the dtype and loss of each forward."""
    import torch

    seen = {"dtypes": set(), "losses": []}
    build = teacher.build_teacher

    def recording(*args, **kwargs):
        tagger = build(*args, **kwargs)
        tagger.linear.register_forward_hook(lambda module, inputs, output: seen["dtypes"].add(output.dtype))
        forward_loss = tagger.forward_loss

        def loss_of(sentences):
            loss, count = forward_loss(sentences)
            if tagger.training:
                seen["losses"].append(float(loss.detach()) / max(count, 1))
            return loss, count

        tagger.forward_loss = loss_of
        return tagger

    monkeypatch_module.setattr(teacher, "build_teacher", recording)
    settings = teacher.TeacherSettings(backbone=str(tiny_backbone), epochs=1, patience=1, learning_rate=1e-3,
                                       batch_size=8, use_amp=True, gold=40, min_updates=12)
    best = teacher.train_teacher(CORPUS, settings, tmp_path_factory.mktemp("gold-teacher") / "t", max_sentences=40)
    assert torch.bfloat16 in seen["dtypes"]
    return best, seen


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_bf16_gold_teacher_trains_with_finite_loss_and_records_its_subset(gold_teacher, corpus):
    best, seen = gold_teacher
    assert best.is_file() and seen["losses"] and all(math.isfinite(x) for x in seen["losses"])
    training = json.loads((best.parent / "training.json").read_text())
    assert training["use_amp"] and training["train_sentences"] == 40
    # 5 batches of 8 an epoch: 1 epoch x factor 3 reaches the 12 updates asked for; patience scaled alike
    assert training["epochs"] == 3
    record = teacher_gold(best)
    assert record == {"gold": 40, "seed": config.GOLD_SEED, "sentences": 40,
                      "held_back": len(corpus.splits["train"]) - 40, "epochs": 3, "patience": 3, "factor": 3,
                      "min_updates": 12}


def test_gold_caches_and_the_pool_cache_hold_the_subset_and_pool_tokens(gold_teacher, corpus, tmp_path):
    best, _ = gold_teacher
    pool = tmp_path / "heldback-gold40.tokens"
    write_tokens(pool, (s.tokens for s in held_back(corpus, 40)))
    soft = tmp_path / "soft"
    paths = teacher.write_soft_labels(best, CORPUS, ["train", "dev"], [pool], soft, max_sentences=30, gold=40)
    assert [p.name for p in paths] == ["train.npz", "dev.npz", "transfer-heldback-gold40.npz"]
    subset = [s.tokens for s in gold_subset(corpus, 40).splits["train"][:30]]
    train = softlabels.read(paths[0])
    softlabels.validate(train, paths[0], subset, split="train")
    assert train.header["gold"] == 40 and train.header["teacher_gold"] == 40
    transfer = softlabels.read(paths[2])
    pool_tokens = [s.tokens for s in held_back(corpus, 40)][:30]
    softlabels.validate(transfer, paths[2], pool_tokens, split="transfer")  # tokens in == tokens cached
    assert transfer.header["tokens_sha256"] == softlabels.token_checksum(pool_tokens)
    # k best paths go into the gold train cache only with the same --gold (its sentences are the subset's)
    teacher.add_teacher_kbest(best, CORPUS, soft, ["train"], 2, [pool], gold=40)
    assert softlabels.read(paths[0]).kbest_paths is not None
    with pytest.raises(SwenerError, match="token sequences differ"):
        teacher.add_teacher_kbest(best, CORPUS, soft, ["train"], 2)


def test_a_kd_student_of_the_subset_learns_from_the_pool(gold_teacher, corpus, tiny_vectors, tmp_path):
    from swener.students.run import StudentSettings, train_student

    best, _ = gold_teacher
    pool = tmp_path / "heldback-gold40.tokens"
    write_tokens(pool, (s.tokens for s in held_back(corpus, 40)))
    soft = tmp_path / "soft"
    teacher.write_soft_labels(best, CORPUS, ["train"], [], soft, gold=40)
    teacher.write_soft_labels(best, CORPUS, [], [pool], soft, max_sentences=20)
    settings = StudentSettings(family="bilstm", alpha=0.5, epochs=1, hidden_size=8, gold=40, max_sentences=25,
                               transfer_text=str(pool), transfer_ratio=None, gradient_probes=0, dev_only=True,
                               threads=1)
    results = train_student(settings, CORPUS, tiny_vectors, soft, tmp_path / "student", eval_corpora=())
    assert results["settings"]["gold"] == 40 and results["teacher_gold"] == 40
    assert results["transfer"]["sentences"] == 20
    assert results["training"]["train_sentences"] == 25 + 20
    assert np.isfinite(results["scores"][f"{CORPUS}/dev"]["micro_f1"])


def test_bench_train_times_float32_and_bf16_in_one_process(tiny_backbone, tmp_path):
    from swener.teacher.bench_train import precision_bench

    out = tmp_path / "bench.json"
    result = precision_bench(CORPUS, str(tiny_backbone), out, gold=24, epochs=2, learning_rate=1e-3, batch_size=8,
                             max_sentences=24, work=tmp_path / "work")
    assert json.loads(out.read_text()) == result
    assert list(result["variants"]) == ["float32", "bf16"]
    for name, row in result["variants"].items():
        assert len(row["epoch_train_seconds"]) == 2 and row["train_seconds_per_epoch"] > 0, name
        assert 0.0 <= row["dev_f1"] <= 1.0 and row["train_sentences"] == 24 and row["updates_per_epoch"] == 3
    assert json.loads((tmp_path / "work" / "bf16" / "training.json").read_text())["use_amp"] is True
    assert json.loads((tmp_path / "work" / "float32" / "training.json").read_text())["use_amp"] is False
