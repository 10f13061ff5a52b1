"""Nothing lost, nothing silently wrong: a held-out list of damaged caches, unsafe outputs and killed runs.

Each case runs the real command line (click's runner, or a subprocess where a signal is
sent) and checks the exit status, the one `error:` line, that no traceback is printed, that
no model is written from a bad cache and that inputs and finished runs are left intact.
"""
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import flair
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from swener.cli import main
from swener.data import corpora
from swener.kd import softlabels
from swener.train import fit as train

BIN = Path(sys.executable).parent / "swener"
N = 30  # sentences of the test caches and students


# --------------------------------------------------------------------------- helpers


def cli(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def assert_one_error_line(result, *fragments: str) -> None:
    """Exit status 1, exactly one line on stderr starting with `error: `, no traceback, no 'Aborted!'."""
    assert result.exit_code == 1, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught exception
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and "Aborted" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, str]:
    """Every file under a folder with its sha256."""
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus():
    return corpora.load("webbnyheter2012")


@pytest.fixture(scope="module")
def good_cache(corpus, tmp_path_factory) -> Path:
    """A valid train cache of the first N sentences: a teacher that mostly agrees with the gold tags."""
    tags = softlabels.canonical_tags(corpus.types)
    rng = np.random.default_rng(0)
    dists = []
    for sentence in corpus.splits["train"][:N]:
        probs = rng.dirichlet(np.ones(len(tags)), size=len(sentence.tokens)) * 0.2
        for i, tag in enumerate(sentence.tags):
            probs[i, tags.index("O" if tag == "O" else "S-" + tag[2:])] += 0.8
        dists.append(np.log(probs / probs.sum(axis=1, keepdims=True)))
    path = tmp_path_factory.mktemp("cache") / "train.npz"
    softlabels.write(path, dists, tags=tags, tokens=[s.tokens for s in corpus.splits["train"][:N]],
                     teacher_sha256="t" * 64, corpus="webbnyheter2012", split="train")
    return path


def arrays(path: Path) -> dict:
    """The arrays of a cache, the header decoded."""
    with np.load(path) as data:
        out = {name: data[name] for name in data.files}
    out["header"] = json.loads(bytes(out["header"]).decode())
    return out


def save(folder: Path, parts: dict) -> Path:
    """Write arrays (the header as JSON) as a cache file `folder/train.npz`."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = dict(parts)
    if isinstance(parts.get("header"), dict):
        parts["header"] = np.frombuffer(json.dumps(parts["header"]).encode(), dtype=np.uint8)
    with open(folder / "train.npz", "wb") as handle:
        np.savez(handle, **parts)
    return folder / "train.npz"


def edited(good: Path, folder: Path, **changes) -> Path:
    """A copy of the good cache with some arrays (or header keys, as header_<key>) replaced."""
    parts = arrays(good)
    for key, value in changes.items():
        if key.startswith("header_"):
            parts["header"][key[len("header_"):]] = value
        elif value is None:
            parts.pop(key)
        else:
            parts[key] = value
    return save(folder, parts)


def damaged_caches(good: Path, root: Path) -> dict[str, tuple[Path, str]]:
    """Case name -> (a damaged soft-label folder, a fragment its error line must hold)."""
    parts = arrays(good)
    logp, offsets = parts["logp"], parts["offsets"]
    data = good.read_bytes()
    cases: dict[str, tuple[Path, str]] = {}

    def folder(name: str) -> Path:
        return root / name

    def raw(name: str, content: bytes, fragment: str) -> None:
        folder(name).mkdir(parents=True)
        (folder(name) / "train.npz").write_bytes(content)
        cases[name] = (folder(name), fragment)

    raw("empty", b"", "an empty file")
    raw("truncated", data[: len(data) // 2], "damaged or not a swener soft-label file")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40  # inside the logp array: the zip's CRC no longer matches
    raw("bit-flip", bytes(flipped), "BadZipFile")
    raw("text", b"this is not a cache\n", "damaged or not a swener soft-label file")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("readme.txt", "hello")
    raw("other-zip", zipped.getvalue(), "no header, offsets array")

    def case(name: str, fragment: str, **changes) -> None:
        cases[name] = (edited(good, folder(name), **changes).parent, fragment)

    case("no-logp", "the logp array is missing", logp=None)
    case("header-not-json", "damaged or not a swener soft-label file", header=np.frombuffer(b"{nope", np.uint8))
    case("format", "format 99 but this swener reads 1", header_format=99)
    case("tags-duplicated", "not a list of distinct tag names", header_tags=["O", "O"] + parts["header"]["tags"][2:])
    case("tokens-count", "the header says", header_tokens=int(offsets[-1]) + 5)
    case("offsets-short", "rows of distributions but the offsets count", offsets=np.concatenate(
        [offsets[:-1], [offsets[-1] - 3]]), header_tokens=int(offsets[-1]) - 3)
    case("offsets-start", "the offsets start at 2, not 0", offsets=offsets + 2)
    falling = offsets.copy()
    falling[5] = falling[3]
    case("offsets-decrease", "the offsets decrease at sentence 4", offsets=falling)
    case("offsets-float", "expected one row of integers", offsets=offsets.astype(np.float64))
    case("offsets-count", f"{N} offsets for {N} sentences", offsets=offsets[:-1],
         header_tokens=int(offsets[-2]), logp=logp[: offsets[-2]])
    moved = offsets.copy()
    moved[1] += 1  # same total, but sentences 0 and 1 have the wrong number of rows
    case("rows-per-sentence", f"sentence 0 has {moved[1]} rows of distributions for its {offsets[1]} tokens",
         offsets=moved)
    nan = logp.copy()
    nan[offsets[3] + 1, 3] = np.nan
    case("nan", "sentence 3, token 1 holds nan", logp=nan)
    inf = logp.copy()
    inf[offsets[2], 0] = np.inf
    case("plus-inf", "sentence 2, token 0 holds inf", logp=inf)
    case("not-a-distribution", "is not a log-distribution", logp=(logp.astype(np.float32) + 1).astype(np.float16))
    case("all-minus-inf", "sentence 0, token 0 is not a log-distribution",
         logp=np.concatenate([np.full((1, logp.shape[1]), -np.inf, np.float16), logp[1:]]))
    case("logp-int", "expected floats", logp=logp.astype(np.int8))
    case("logp-shape", "expected floats [tokens, 17 tags]", logp=logp[:, :5])
    renamed = [t.replace("PER", "PRS") for t in parts["header"]["tags"]]
    case("unknown-tags", "tags the student does not know: B-PRS", header_tags=renamed)
    fewer = np.delete(logp, [i for i, t in enumerate(parts["header"]["tags"]) if "PER" in t], axis=1)
    fewer = fewer.astype(np.float32) - np.log(np.exp(fewer.astype(np.float32)).sum(axis=1, keepdims=True))
    case("fewer-tags", "student tags it lacks: B-PER", logp=fewer.astype(np.float16),
         header_tags=[t for t in parts["header"]["tags"] if "PER" not in t])
    case("test-split", "students never train on test data", header_split="test")
    case("other-sentences", "the token sequences differ", header_tokens_sha256="0" * 64)
    return cases


def train_args(soft: Path, vectors: Path, out: Path, *extra: str) -> list:
    return ["train", "--family", "cnn", "--alpha", "0.5", "--soft-labels", soft, "--embeddings", vectors,
            "--max-sentences", N, "--epochs", 1, "--hidden-size", 8, "--threads", 1, "--out", out, *extra]


# --------------------------------------------------------------------------- damaged caches


def test_good_cache_reads(good_cache, corpus):
    soft = softlabels.read(good_cache)
    softlabels.validate(soft, good_cache, [s.tokens for s in corpus.splits["train"][:N]], split="train",
                        types=corpus.types)
    assert len(soft) == N and len(soft.first(10)) == 10


def test_damaged_caches_are_one_error_line_and_write_no_model(good_cache, tiny_vectors, tmp_path):
    """`swener train` on each damaged cache: exit 1, one line naming the file and what to do, nothing written."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text('{"a finished": "run"}')  # a previous run that must survive
    before = tree(out)
    for name, (soft, fragment) in damaged_caches(good_cache, tmp_path / "caches").items():
        result = cli(*train_args(soft, tiny_vectors, out))
        assert_one_error_line(result, fragment, str(soft / "train.npz"))
        assert "write" in result.stderr, (name, result.stderr)  # says what to do: (re)write the cache
        assert tree(out) == before, name
        assert not (tmp_path / "run.partial").exists() and not (tmp_path / "run.old").exists(), name


def test_a_cache_shorter_than_the_student_needs(good_cache, tiny_vectors, tmp_path):
    soft = good_cache.parent
    result = cli(*train_args(soft, tiny_vectors, tmp_path / "run")[:-2], "--max-sentences", N + 10,
                 "--out", tmp_path / "run")
    assert_one_error_line(result, f"{N} sentences cached, the student trains on {N + 10}")
    assert not (tmp_path / "run").exists()


def test_a_longer_cache_is_used_through_its_first_sentences(good_cache, tiny_vectors, tmp_path):
    out = tmp_path / "run"
    result = cli(*train_args(good_cache.parent, tiny_vectors, out)[:-2], "--max-sentences", N - 10, "--out", out)
    assert result.exit_code == 0, (result.stderr, result.exception)
    saved = json.loads((out / "results.json").read_text())
    assert saved["training"]["train_sentences"] == N - 10 and (out / "best-model.pt").is_file()


def test_an_empty_cache_on_the_real_command_line_is_not_aborted(tmp_path, tiny_vectors):
    """A subprocess, as a user runs it: an empty file was click's bare 'Aborted!' (EOFError)."""
    soft = tmp_path / "soft"
    soft.mkdir()
    (soft / "train.npz").write_bytes(b"")
    result = subprocess.run([str(BIN), *map(str, train_args(soft, tiny_vectors, tmp_path / "run"))],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr == f"error: {soft / 'train.npz'}: damaged or not a swener soft-label file (an empty " \
                            "file); delete it and write it again (`swener teacher soft-labels`, or " \
                            "`make soft-labels`)\n"
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- unsafe outputs of `swener tag`


@pytest.fixture(scope="module")
def student(tiny_vectors, tmp_path_factory, corpus) -> Path:
    """A tiny, untrained BiLSTM student saved as best-model.pt."""
    from swener.students.tagger import build_student
    from swener.vectors.embeddings import CompactFastTextEmbeddings

    flair.set_seed(1)
    tagger = build_student("bilstm", CompactFastTextEmbeddings(tiny_vectors), corpus.types, hidden_size=8,
                           card={"corpus": "webbnyheter2012", "family": "bilstm", "seed": 1})
    path = tmp_path_factory.mktemp("student") / "best-model.pt"
    tagger.save(path)
    return path


TEXT = "Anna Berg bor i Umeå.\nHon arbetar på Volvo i Göteborg.\n".encode()


def test_output_that_is_an_input_is_refused_before_reading(tmp_path, student):
    text = tmp_path / "in.txt"
    text.write_bytes(TEXT)
    other = tmp_path / "other.txt"
    other.write_bytes(b"Per bor i Lund.\n")
    link = tmp_path / "link.txt"
    link.symlink_to(text)
    hard = tmp_path / "hard.txt"
    os.link(text, hard)
    cases = [(("tag", student, text, "-o", text), text, text),
             (("tag", student, other, text, "-o", text), text, text),  # one of several inputs
             (("tag", student, text, "-o", link), link, text),  # the output is a symbolic link to the input
             (("tag", student, link, "-o", text), text, link),  # the input is a symbolic link to the output
             (("tag", student, text, "-o", hard), hard, text),  # a hard link: another name of the same file
             (("tag", student, text, "-o", tmp_path / "." / "in.txt"), tmp_path / "." / "in.txt", text)]
    for args, out, source in cases:
        result = cli(*args)
        assert_one_error_line(result, f"{out}: the output file is also an input ({source})",
                              "write the output to another file")
        assert text.read_bytes() == TEXT and other.read_bytes() == b"Per bor i Lund.\n"
        assert link.is_symlink() and os.path.samefile(hard, text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.txt", "in.txt", "link.txt", "other.txt"]


def test_output_that_is_an_input_is_refused_even_without_a_model(tmp_path):
    """The check comes before the model is loaded (and before any input is read)."""
    text = tmp_path / "in.txt"
    text.write_bytes(TEXT)
    assert_one_error_line(cli("tag", tmp_path / "missing.pt", text, "-o", text), "the output file is also an input")
    assert text.read_bytes() == TEXT


def test_sigterm_during_tagging_removes_the_temporary_file(tmp_path, student):
    out = tmp_path / "out.conll"
    out.write_bytes(b"old results\n")
    source = tmp_path / "big.txt"
    source.write_bytes(b"".join(b"Mening nummer %d om Anna Berg i Ume\xc3\xa5 och Volvo.\n" % i
                                for i in range(400_000)))
    process = subprocess.Popen([str(BIN), "tag", str(student), str(source), "-o", str(out), "--batch-size", "8"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 240
        while not list(tmp_path.glob(".out.conll.*.part")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no temporary output file appeared"
            time.sleep(0.2)
        time.sleep(0.5)  # tagging is under way
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert out.read_bytes() == b"old results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt", "out.conll"]


# --------------------------------------------------------------------------- training runs that survive a kill


class Killed(BaseException):
    """Stands for the process dying at this point: nothing after it runs (fit has no clean-up handlers)."""


def _run(tiny_vectors, out: Path, seed: int) -> dict:
    from swener.students.run import StudentSettings, train_student

    settings = StudentSettings(family="cnn", alpha=0.0, epochs=1, hidden_size=8, max_sentences=20, seed=seed,
                               threads=1)
    return train_student(settings, "webbnyheter2012", tiny_vectors, None, out, eval_corpora=())


def _state(out: Path, old: dict[str, str]) -> str:
    """'old' or 'new' when `out` holds one complete run, else fails."""
    assert out.is_dir(), f"{out} is missing"
    files = tree(out)
    assert {"best-model.pt", "results.json", "training.json"} <= set(files), files
    seed = json.loads((out / "results.json").read_text())["settings"]["seed"]
    assert json.loads((out / "training.json").read_text())["seed"] == seed  # never a mix of two runs
    tagger = flair.nn.Classifier.load(out / "best-model.pt")
    assert tagger.card["seed"] == seed
    if seed == 1:
        assert files == old  # the old run, byte for byte
        return "old"
    assert seed == 2
    return "new"


def test_a_killed_rerun_leaves_the_old_run_or_the_new_one(tmp_path, tiny_vectors, monkeypatch):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    _run(tiny_vectors, out, seed=1)
    old = tree(out)
    import swener.eval.evaluate

    def after_training(real):
        def kill(partial):
            real(partial)
            raise Killed("after training")
        return kill

    def during_scoring(*args, **kwargs):
        raise Killed("during scoring")

    real_rename = Path.rename

    def between_renames(self, target):
        if self.name.endswith(".partial"):
            raise Killed("between the renames")
        return real_rename(self, target)

    real_rmtree = train.shutil.rmtree

    def after_swap(path, *args, **kwargs):
        if str(path).endswith(".old"):
            raise Killed("just after the swap")
        return real_rmtree(path, *args, **kwargs)

    points = [("after training", "_keep_best", train, after_training(train._keep_best), "old"),
              ("during scoring", "score_model", swener.eval.evaluate, during_scoring, "old"),
              ("between the renames", "rename", Path, between_renames, "old"),
              ("just after the swap", "rmtree", train.shutil, after_swap, "new")]
    for name, attribute, owner, fault, expected in points:
        with monkeypatch.context() as patch:
            patch.setattr(owner, attribute, fault)
            with pytest.raises(Killed, match=name):
                _run(tiny_vectors, out, seed=2)
        if out.exists():  # what a reader sees right after the kill
            assert _state(out, old) == expected, name
        else:  # killed between the two renames: the old run waits at run.old
            assert name == "between the renames" and tree(tmp_path / "run.old") == old
        train.recover(out)  # what the next run does first
        assert _state(out, old) == expected, name
        assert not (tmp_path / "run.old").exists()
        if expected == "new":  # start the next kill point from the old run again
            real_rmtree(out)
            _run(tiny_vectors, out, seed=1)
            old = tree(out)
    results = _run(tiny_vectors, out, seed=2)  # a run that is not killed replaces the old one
    assert _state(out, old) == "new" and results["settings"]["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_runs_being_swapped_in_are_never_picked(tmp_path, student):
    """A killed run's `seed-N.partial` (already scored) and `seed-N.old` are no model for `swener models`/`report`."""
    from swener import report
    from swener.serve import names as models

    def fake(folder: Path, seed: int, dev: float) -> None:
        folder.mkdir(parents=True)
        (folder / "best-model.pt").symlink_to(student)
        (folder / "results.json").write_text(json.dumps({
            "settings": {"family": "cnn", "alpha": 0.0, "seed": seed, "max_sentences": None},
            "corpus": "webbnyheter2012", "scores": {"webbnyheter2012/dev": {"micro_f1": dev},
                                                    "webbnyheter2012/test": {"micro_f1": dev}},
            "counts": {}, "cost": {}}))

    run = tmp_path / "cnn" / "plain" / "settings"
    fake(run / "seed-1", 1, 0.5)
    fake(run / "seed-1.partial", 1, 0.99)
    fake(run / "seed-2.old", 2, 0.98)
    assert models.resolve("cnn-plain", tmp_path) == run / "seed-1" / "best-model.pt"
    assert report.find_results(tmp_path) == [run / "seed-1" / "results.json"]
    teacher = tmp_path / "teacher" / "webbnyheter2012"
    for name in ("t.partial", "t.old"):
        (teacher / name).mkdir(parents=True)
        (teacher / name / "best-model.pt").write_bytes(b"")
        (teacher / name / "training.json").write_text(json.dumps({"seed": 1}))
    assert models.teacher_entries(tmp_path) == []
