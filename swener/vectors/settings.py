"""The settings of one fastText training run (gensim) and of the compaction after it; the folder name they give."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from swener import config
from swener.errors import SwenerError


@dataclass(frozen=True)
class VectorSettings:
    """Settings of one gensim FastText run and of the compaction that follows it."""

    model: str = config.EMB_MODEL  # or "skipgram"
    dim: int = config.EMB_DIM
    epochs: int = config.EMB_EPOCHS
    min_count: int = 5
    minn: int = 3
    maxn: int = 6
    bucket: int = 2_000_000
    window: int = 5
    negative: int = 5
    max_words: int = 200_000
    max_ngrams: int = 200_000
    sample: float | None = None  # a fraction (0, 1] of the raw text lines, or a token budget (> 1)
    ner_train: tuple[str, ...] = ("webbnyheter2012",)
    seed: int = 1
    workers: int = 2

    def __post_init__(self) -> None:
        if self.model not in ("cbow", "skipgram"):
            raise SwenerError(f"model must be cbow or skipgram, not {self.model!r}")
        if self.sample is not None and self.sample <= 0:
            raise SwenerError(f"sample must be a fraction in (0, 1] or a token budget > 1, not {self.sample}")
        if not 0 < self.minn <= self.maxn:
            raise SwenerError(f"need 0 < minn <= maxn, got minn={self.minn}, maxn={self.maxn}")

    def name(self) -> str:
        """The output folder name: model, dim, epochs, a short hash of the other settings, the sample."""
        base = f"{self.model}-d{self.dim}-e{self.epochs}"
        defaults = VectorSettings(model=self.model, dim=self.dim, epochs=self.epochs, sample=self.sample,
                                 workers=self.workers)
        if _settings_key(self) != _settings_key(defaults):
            base += "-" + hashlib.sha256(_settings_key(self).encode()).hexdigest()[:8]
        if self.sample is not None:
            base += f"-sample{_format_sample(self.sample)}"
        return base


def _settings_key(settings: VectorSettings) -> str:
    values = asdict(settings)
    values.pop("workers")  # does not change what is trained (beyond thread scheduling)
    return json.dumps(values, sort_keys=True)


def _format_sample(sample: float) -> str:
    if sample <= 1:
        return f"{sample:g}"
    return f"{sample / 1e6:g}M" if sample >= 1e6 else f"{int(sample)}"


def parse_sample(text: str | None) -> float | None:
    """'0.1' -> a fraction of the raw text; '2M', '500k', '2000000' -> a token budget."""
    if text is None or text == "":
        return None
    factor = {"k": 1e3, "m": 1e6}.get(text[-1].lower(), 1.0)
    try:
        value = float(text[:-1] if factor != 1.0 else text) * factor
    except ValueError:
        raise SwenerError(f"--sample {text!r}: give a fraction like 0.1 or a token budget like 2M") from None
    if value <= 0:
        raise SwenerError(f"--sample {text!r}: must be positive")
    return value
