"""The teacher's k best BIOES paths per sentence, added to a soft-label cache for `--kd-target kbest`.

A CRF teacher's k best paths come from list Viterbi on its CRF (`swener.kd.crf.kbest`), their
log-probabilities are path score - log Z; a softmax teacher's come from the BIOES chain
over its log-softmax scores (`swener.kd.bioes.kbest`), valid sequences only, with their
log-probabilities under that chain. Paths are on the cache's canonical tags.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterator

import numpy as np

from swener.batching import in_index_order, length_batches
from swener.config import DEFAULT_KBEST
from swener.kd import softlabels

if TYPE_CHECKING:
    from flair.models import SequenceTagger

log = logging.getLogger("swener")


def teacher_kbest(tagger: SequenceTagger, sentences: list, k: int = DEFAULT_KBEST, batch_size: int = 32
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per sentence (in order): its k best paths [k, tokens] on the canonical tags and their log-probabilities [k]."""
    import torch

    from swener.data.tags import tagger_tags
    from swener.kd import bioes, crf

    names = tagger_tags(tagger)
    types = sorted({name[2:] for name in names if name[:2] in ("B-", "I-", "E-", "S-")})
    wanted = softlabels.canonical_tags(types)
    columns = torch.tensor([names.index(tag) for tag in wanted])
    to_canonical = torch.full((len(names),), 0, dtype=torch.long)  # START/STOP/<unk>: only in ~e^-10000 paths
    to_canonical[columns] = torch.arange(len(wanted))

    def run(ids: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        batch = [sentences[i] for i in ids]  # longest first, as packed sequences need
        tensor, lengths = tagger._prepare_tensors(batch)
        scores = tagger.forward(tensor, lengths)
        if tagger.use_crf:
            features, _, transitions = scores
            start = tagger.label_dictionary.get_idx_for_item("<START>")
            stop = tagger.label_dictionary.get_idx_for_item("<STOP>")
            features, transitions = features.double(), transitions.double()
            paths, path_scores = crf.kbest(features, lengths, k, start, stop, transitions)
            logp = path_scores - crf.log_partition(features, lengths, start, stop, transitions)[:, None]
            paths = to_canonical[paths]
        else:
            rows = torch.split(torch.log_softmax(scores.float(), dim=-1), lengths.tolist())
            padded = torch.nn.utils.rnn.pad_sequence([r[:, columns] for r in rows], batch_first=True)
            paths, logp = bioes.kbest(padded, lengths, wanted, k)
        for sentence in batch:
            sentence.clear_embeddings()
        return [(paths[row, :, :n].numpy().astype(np.int16), logp[row].float().numpy())
                for row, n in enumerate(lengths.tolist())]

    tagger.eval()
    with torch.no_grad():
        batches = length_batches([len(s) for s in sentences], batch_size)
        yield from in_index_order((ids, run(ids)) for ids in batches)
