"""Out-of-fold teacher distributions: the blocks, the fold teacher, the merge of fold teachers' caches."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from swener.cli import main
from swener.data import corpora
from swener.errors import SwenerError
from swener.kd import folds, softlabels

TAGS = softlabels.canonical_tags(["LOC", "MISC", "ORG", "PER"])


def test_blocks_partition_the_sentences_into_contiguous_runs():
    for n in (0, 1, 7, 10, 101):
        for k in (2, 3, 5):
            seen = [i for f in range(1, k + 1) for i in folds.block(n, f, k)]
            assert seen == list(range(n))  # each sentence in exactly one block, blocks in order
            sizes = [len(folds.block(n, f, k)) for f in range(1, k + 1)]
            assert max(sizes) - min(sizes) <= 1
    items = list("abcdefghij")
    assert folds.training_part(items, 1, 2) == list("fghij")
    assert folds.training_part(items, 2, 3) == list("abcghij")


@pytest.mark.parametrize("bad", ["2", "0/2", "3/2", "1/1", "a/b", "1/2/3"])
def test_parse_fold_refuses_what_is_not_a_block(bad):
    with pytest.raises(SwenerError, match="I/K"):
        folds.parse_fold(bad)
    assert folds.parse_fold("2/3") == (2, 3)


def _fold_cache(directory, split, sentences, k, fold, rng, fold_header=True):
    """A fold teacher's cache of `split` with random distributions."""
    dists = [np.log(rng.dirichlet(np.ones(len(TAGS)) * 0.3, size=len(s))) for s in sentences]
    extra = {"seconds": 2.0}
    if fold_header:
        extra["fold"] = {"fold": fold, "folds": k, "train_sentences": len(sentences)}
    softlabels.write(directory / f"{split}.npz", dists, tags=TAGS, tokens=sentences, teacher_sha256=f"{fold}" * 64,
                     corpus="webbnyheter2012", split=split, extra=extra)


@pytest.fixture
def three_teachers(tmp_path):
    corpus = corpora.load("webbnyheter2012")
    train = [s.tokens for s in corpus.splits["train"][:31]]
    dev = [s.tokens for s in corpus.splits["dev"][:9]]
    rng = np.random.default_rng(4)
    dirs, train_rows, dev_rows = [], [], []
    for fold in (1, 2, 3):
        directory = tmp_path / f"fold{fold}"
        directory.mkdir()
        _fold_cache(directory, "train", train, 3, fold, rng)
        _fold_cache(directory, "dev", dev, 3, fold, rng)
        train_rows.append(softlabels.read(directory / "train.npz"))
        dev_rows.append(softlabels.read(directory / "dev.npz"))
        dirs.append(directory)
    return tmp_path, dirs, train, dev, train_rows, dev_rows


def test_merge_takes_each_train_block_from_the_teacher_that_held_it_out(three_teachers):
    tmp_path, dirs, train, dev, train_caches, dev_caches = three_teachers
    # given out of order: the headers say which fold each teacher held out
    written = folds.merge([dirs[2], dirs[0], dirs[1]], tmp_path / "oof")
    assert [p.name for p in written] == ["dev.npz", "train.npz"]
    merged = softlabels.read(tmp_path / "oof" / "train.npz")
    softlabels.validate(merged, tmp_path / "oof" / "train.npz", train, split="train")
    blocks = {0: range(0, 10), 1: range(10, 20), 2: range(20, 31)}  # 31 sentences in 3 contiguous blocks
    for i in range(len(train)):
        source = next(f for f, b in blocks.items() if i in b)
        np.testing.assert_array_equal(merged.sentence(i), train_caches[source].sentence(i))
    control = folds.merge(dirs, tmp_path / "in", held_out=False)[-1]
    inside = softlabels.read(control)
    for i in range(len(train)):
        source = next(f for f, b in blocks.items() if i in b)
        trained_on_it = (source + 1) % 3  # teacher of fold source+2 (1-based) trained on block source+1
        assert i not in blocks[trained_on_it]
        np.testing.assert_array_equal(inside.sentence(i), train_caches[trained_on_it].sentence(i))
    assert inside.header["teacher_sha256"] != merged.header["teacher_sha256"]
    assert merged.kbest_paths is None  # the fold caches hold no k-best paths


def test_merge_keeps_each_blocks_k_best_paths_with_its_distributions(three_teachers):
    tmp_path, dirs, train, _, _, _ = three_teachers
    rng = np.random.default_rng(7)
    paths = []
    for directory in dirs:
        rows = [rng.integers(0, len(TAGS), size=(2, len(s))) for s in train]
        scores = [np.sort(np.log(rng.dirichlet(np.ones(3))[:2]))[::-1] for _ in train]
        softlabels.add_kbest(directory / "train.npz", rows, scores, 2)
        paths.append((rows, scores))
    merged = softlabels.read(folds.merge(dirs, tmp_path / "oof")[-1])
    for i in range(len(train)):
        source = 0 if i < 10 else 1 if i < 20 else 2
        got, score = merged.sentence_kbest(i)
        np.testing.assert_array_equal(got, paths[source][0][i])
        np.testing.assert_allclose(score, paths[source][1][i], rtol=1e-6)
    assert merged.header["out_of_fold"]["folds"] == 3 and merged.header["seconds"] == pytest.approx(6.0)


def test_merged_dev_is_the_mean_of_the_fold_teachers_probabilities(three_teachers):
    tmp_path, dirs, _, dev, _, dev_caches = three_teachers
    folds.merge(dirs, tmp_path / "oof")
    merged = softlabels.read(tmp_path / "oof" / "dev.npz")
    softlabels.validate(merged, tmp_path / "oof" / "dev.npz", dev, split="dev")
    for i in range(len(dev)):
        for t in range(len(dev[i])):
            mean = [sum(np.exp(float(c.sentence(i)[t][j])) for c in dev_caches) / 3 for j in range(len(TAGS))]
            np.testing.assert_allclose(np.exp(merged.sentence(i)[t].astype(np.float64)), mean, atol=2e-3)
    # dev and train carry the same merged teacher, as a student's transfer check requires
    assert merged.header["teacher_sha256"] == softlabels.read(tmp_path / "oof" / "train.npz").header["teacher_sha256"]


def test_merge_refuses_caches_that_do_not_make_k_folds(tmp_path):
    corpus = corpora.load("webbnyheter2012")
    train = [s.tokens for s in corpus.splits["train"][:8]]
    rng = np.random.default_rng(0)
    for name, fold, header in (("a", 1, True), ("b", 1, True), ("c", 2, True), ("d", 2, False)):
        (tmp_path / name).mkdir()
        _fold_cache(tmp_path / name, "train", train, 2, fold, rng, fold_header=header)
    with pytest.raises(SwenerError, match="second teacher of fold 1"):
        folds.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    with pytest.raises(SwenerError, match=r"one teacher for each fold"):
        folds.merge([tmp_path / "c"], tmp_path / "out")
    with pytest.raises(SwenerError, match="not written by a fold teacher"):
        folds.merge([tmp_path / "a", tmp_path / "d"], tmp_path / "out")
    (tmp_path / "e").mkdir()
    _fold_cache(tmp_path / "e", "train", train[:7], 2, 2, rng)
    with pytest.raises(SwenerError, match="differ in tokens_sha256"):
        folds.merge([tmp_path / "a", tmp_path / "e"], tmp_path / "out")
    (tmp_path / "f").mkdir()  # a fold teacher of 8 sentences, its cache of all 9
    softlabels.write(tmp_path / "f" / "train.npz", [np.zeros((len(s), len(TAGS))) - np.log(len(TAGS)) for s in
                     [*train, train[0]]], tags=TAGS, tokens=[*train, train[0]], teacher_sha256="f" * 64,
                     corpus="webbnyheter2012", split="train", extra={"fold": {"fold": 2, "folds": 2,
                                                                               "train_sentences": 8}})
    with pytest.raises(SwenerError, match="blocks are of 8 train sentences but the cache holds 9"):
        folds.merge([tmp_path / "a", tmp_path / "f"], tmp_path / "out")
    assert not (tmp_path / "out" / "train.npz").exists()
    # the CLI: one line naming the folder, no traceback
    result = CliRunner().invoke(main, ["teacher", "out-of-fold", "--soft-labels", str(tmp_path / "a"),
                                       "--soft-labels", str(tmp_path / "d"), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert f"{tmp_path / 'd'}/train.npz: not written by a fold teacher" in result.output
    good = CliRunner().invoke(main, ["teacher", "out-of-fold", "--soft-labels", str(tmp_path / "a"),
                                     "--soft-labels", str(tmp_path / "c"), "--out", str(tmp_path / "out")])
    assert good.exit_code == 0, good.output
    assert softlabels.read(tmp_path / "out" / "train.npz").header["out_of_fold"]["held_out"] is True


def test_a_fold_teacher_trains_without_its_block_and_its_cache_says_so(tiny_backbone, tmp_path):
    from swener.teacher import run as teacher

    settings = teacher.TeacherSettings(backbone=str(tiny_backbone), epochs=1, learning_rate=1e-3, batch_size=8,
                                       fold="2/2")
    best = teacher.train_teacher("webbnyheter2012", settings, tmp_path / "t", max_sentences=40)
    assert json.loads((best.parent / "training.json").read_text())["train_sentences"] == 20
    fold = json.loads((best.parent / "fold.json").read_text())
    assert fold == {"fold": 2, "folds": 2, "held_out": [20, 40], "train_sentences": 40}
    path = teacher.write_soft_labels(best, "webbnyheter2012", ["train"], [], tmp_path / "soft", max_sentences=40)[0]
    assert softlabels.read(path).header["fold"]["fold"] == 2


def test_make_out_of_fold_trains_the_fold_teachers_and_joins_their_caches(tmp_path, tiny_backbone):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    variables = [f"VENV={sys.prefix}", "QUICK=1", "MAX_SENTENCES=30", "TEACHER_EPOCHS=1", "TEACHER_BATCH=8",
                 f"BACKBONE={tiny_backbone}", "TEACHER_FOLDS=2", "KBEST_K=2"]
    env = {**os.environ, "SWENER_DATA": str(corpora.data_root()), "OMP_NUM_THREADS": "1"}

    def make(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "-f", str(root / "Makefile"), "-o", f"{sys.prefix}/bin/swener", *variables,
                               *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    run = make("out-of-fold")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (merged,) = (tmp_path / "softlabels").glob("*/*-oof2/train.npz")
    (control,) = (tmp_path / "softlabels").glob("*/*-oof2-in/train.npz")
    teachers = sorted((tmp_path / "models" / "teacher").glob("*/*-fold*of2"))
    assert [json.loads((t / "fold.json").read_text())["held_out"] for t in teachers] == [[0, 15], [15, 30]]
    for path, held_out in ((merged, True), (control, False)):
        soft = softlabels.read(path)
        assert soft.header["out_of_fold"]["held_out"] is held_out and soft.header["kbest"] == 2
        softlabels.validate(soft, path, [s.tokens for s in corpora.load("webbnyheter2012").splits["train"][:30]],
                            split="train")
        assert (path.parent / "dev.npz").is_file()
    assert make("-q", "out-of-fold").returncode == 0  # up to date: nothing is trained twice
    planned = make("-n", "-B", "out-of-fold", "OOF_TEXTS=text/news.txt.gz", "TRANSFER_MAX=77")
    assert "--text text/news.txt.gz --max-sentences 77" in planned.stdout, planned.stdout[-2000:]
