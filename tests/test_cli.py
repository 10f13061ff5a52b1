"""The command line: fast help, corpus stats, one error line for bad input."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "swener"


def run(*args, **kwargs):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120, **kwargs)


def test_help_is_fast_and_does_not_import_flair():
    started = time.perf_counter()
    result = run("--help")
    assert result.returncode == 0 and "corpus" in result.stdout
    probe = subprocess.run([sys.executable, "-c",
                            "import sys, swener_cli, os; os.environ['SWENER_LAZY']='1'; import swener.cli; "
                            "print('flair' in sys.modules, 'torch' in sys.modules)"],
                           capture_output=True, text=True, env={**os.environ, "SWENER_LAZY": "1"})
    assert probe.stdout.split() == ["False", "False"], probe.stderr
    assert time.perf_counter() - started < 30  # generous: the real figure is in the README


def test_corpus_stats_json():
    result = run("corpus", "stats", "uner-pud", "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["splits"]["test"]["sentences"] == 1000 and stats["splits"]["test"]["entities"] == 1029


def test_bad_input_is_one_line_without_traceback(tmp_path):
    bad = tmp_path / "train.txt"
    bad.write_bytes(b"Anna PER\nG\xf6teborg LOC\n")
    result = run("corpus", "stats", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert f"{bad}:2: not UTF-8" in result.stderr
    missing = run("corpus", "stats", "no-such-corpus")
    assert missing.returncode == 1 and "no such corpus or path" in missing.stderr


def test_a_missing_transfer_text_is_one_error_naming_it(tmp_path):
    from swener.errors import DataError
    from swener.teacher.run import read_text_sentences

    with pytest.raises(DataError, match=f"{tmp_path / 'none.txt.gz'}: no such text file; give a raw text file"):
        read_text_sentences(tmp_path / "none.txt.gz")


def test_encoder_options_are_checked_before_training(tmp_path):
    common = ["train", "--family", "idcnn-crf", "--alpha", "0", "--embeddings", str(tmp_path / "none"),
              "--out", str(tmp_path / "out")]
    unknown = run(*common, "--encoder-option", "depth=3")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1, unknown.stderr
    assert "the idcnn encoder has no option depth; its options: dilations, iterations, kernel_size, residual" \
        in unknown.stderr
    malformed = run(*common, "--encoder-option", "residual")
    assert malformed.returncode == 1 and "--encoder-option 'residual': write KEY=VALUE" in malformed.stderr
    assert not (tmp_path / "out").exists()
