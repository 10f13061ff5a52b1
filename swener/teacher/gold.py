"""A teacher of a gold subset (`swener teacher train --gold N`): its schedule and the record beside it.

With few gold sentences an epoch is a few updates, so the teacher's epochs (and its patience,
which would otherwise stop it during the warm-up) are multiplied by the smallest factor that
gives at least `min_updates` updates. `gold.json` beside the model says which sentences were its
own, and the caches it writes carry that in their header (`teacher_gold`).
"""
from __future__ import annotations

import json
from pathlib import Path

from swener.config import GOLD_SEED

GOLD_FILE = "gold.json"


def scaled_schedule(epochs: int, patience: int, sentences: int, batch_size: int,
                    min_updates: int | None) -> tuple[int, int, int]:
    """(epochs, patience, factor): both multiplied by the smallest factor giving >= min_updates updates at most."""
    if min_updates is None:
        return epochs, patience, 1
    batches = -(-sentences // batch_size)  # length-bucketed or not, only the last batch may be short
    factor = max(1, -(-min_updates // (epochs * batches)))
    return epochs * factor, patience * factor, factor


def gold_record(gold: int | None, sentences: int, held_back: int, schedule: tuple[int, int, int],
           min_updates: int | None) -> dict:
    """What gold.json holds: the subset (size, shuffle seed, held back) and the schedule it trained with."""
    epochs, patience, factor = schedule
    return {"gold": gold, "seed": GOLD_SEED, "sentences": sentences, "held_back": held_back, "epochs": epochs,
            "patience": patience, "factor": factor, "min_updates": min_updates}


def teacher_gold(teacher_path: Path) -> dict | None:
    """gold.json beside a teacher's model (None: a teacher of the whole train split)."""
    path = Path(teacher_path).parent / GOLD_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def cache_record(teacher_path: Path, gold: int | None) -> dict:
    """Header keys of a cache: the gold subset it covers and the one its teacher was trained on (None: all)."""
    own = teacher_gold(teacher_path)
    return {"gold": gold, "teacher_gold": own["gold"] if own else None}
