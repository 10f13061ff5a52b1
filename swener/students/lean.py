"""The lean batch path of a student: word ids kept on sentences, one gather per batch, numpy decoding.

A mixin of `swener.students.tagger.StudentTagger` (before Flair's SequenceTagger in its bases):
it replaces Flair's batch preparation, `predict` and decoding when the student's embeddings are
swener's compact fastText table, and adds `tag_tokens` (no Flair objects at all). Flair's own
path stays for other embeddings and for `tagger.lean = False` (the comparisons in tests/test_lean.py).
On both paths a student's extra input parts (character features, subword vectors:
`swener.students.inputs.WordFeatures.extend_inputs`) are appended to the word vectors of the token texts.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import flair
import numpy as np
import torch
from flair.data import Sentence, get_spans_from_bio

from swener.kd import decoding
from swener.vectors.embeddings import CompactFastTextEmbeddings

IDS_ATTR = "_swener_ids"  # (id space, word ids) cached on a Flair Sentence by the lean path
GOLD_ATTR = "_swener_gold"  # (tag dictionary size, gold tag ids) cached on a training Sentence


class LeanPath:
    """Batches as one [B, T] id tensor and one gather; predictions decoded in numpy (Flair's semantics)."""

    @property
    def uses_lean_path(self) -> bool:
        """Whether batches take the lean path (swener's embeddings, and not switched off with `lean = False`)."""
        return self.lean and isinstance(self.embeddings, CompactFastTextEmbeddings)

    @property
    def supports_tag_tokens(self) -> bool:
        """Whether `tag_tokens` works: the lean path over the token text (not a token label)."""
        return self.uses_lean_path and self.embeddings.field is None

    def _token_texts(self, sentence: Sentence) -> list[str]:
        """The texts of a sentence's tokens that the word vectors are looked up by (a token label for a `field`)."""
        field = getattr(self.embeddings, "field", None)
        return [t.text if field is None else t.get_label(field).value for t in sentence.tokens]

    def _sentence_ids(self, sentence: Sentence) -> list[int]:
        """The word ids of a sentence, looked up once and kept on it (until the id space changes)."""
        embeddings: CompactFastTextEmbeddings = self.embeddings  # type: ignore[assignment]
        cached = getattr(sentence, IDS_ATTR, None)
        if cached is not None and cached[0] == embeddings.ids_key and len(cached[1]) == len(sentence):
            return cached[1]
        ids = embeddings.word_ids(self._token_texts(sentence))
        setattr(sentence, IDS_ATTR, (embeddings.ids_key, ids))
        return ids

    def _padded_ids(self, id_lists: Sequence[list[int]]) -> tuple[torch.Tensor, torch.LongTensor]:
        """[B, T] ids padded with -1 (a zero vector) and the lengths."""
        lengths = [len(ids) for ids in id_lists]
        longest = max(lengths)
        padded = torch.tensor([ids + [-1] * (longest - len(ids)) for ids in id_lists], dtype=torch.long)
        return padded.to(flair.device), torch.LongTensor(lengths)

    def _prepare_tensors(self, data_points: list[Sentence] | Sentence) -> tuple[torch.Tensor, torch.LongTensor]:
        """[B, T, D] word vectors (with the extra input parts) and lengths: one gather per batch, nothing stored on
        the tokens."""
        sentences = [data_points] if not isinstance(data_points, list) else data_points
        if not self.uses_lean_path:
            vectors, lengths = super()._prepare_tensors(sentences)
        else:
            self.embeddings.trim_oov_table()
            ids, lengths = self._padded_ids([self._sentence_ids(s) for s in sentences])
            vectors = self._cast_input(self.embeddings.lookup(ids))
        if self.has_word_features:
            vectors = self.extend_inputs(vectors, [self._token_texts(s) for s in sentences])
        return vectors, lengths

    def _prepare_label_tensor(self, sentences: list[Sentence]) -> torch.Tensor:
        """Gold tag ids of a batch; while training they are computed once per sentence and kept on it."""
        if not (self.uses_lean_path and self.training):
            return super()._prepare_label_tensor(sentences)
        size = len(self.label_dictionary)
        rows = []
        for sentence in sentences:
            cached = getattr(sentence, GOLD_ATTR, None)
            if cached is None or cached[0] != size or len(cached[1]) != len(sentence):
                cached = (size, [self.label_dictionary.get_idx_for_item(tag)
                                 for tag in self._get_gold_labels([sentence])])
                setattr(sentence, GOLD_ATTR, cached)
            rows.extend(cached[1])
        return torch.tensor(rows, dtype=torch.long, device=flair.device)

    def _cast_input(self, vectors: torch.Tensor) -> torch.Tensor:
        """Word vectors in the dtype of the encoder's float weights (an int8 model keeps float32 inputs)."""
        weight = getattr(self.linear, "weight", None)
        dtype = weight.dtype if isinstance(weight, torch.Tensor) else torch.float32
        return vectors if vectors.dtype == dtype else vectors.to(dtype)

    @contextlib.contextmanager
    def _inference_precision(self) -> Iterator[None]:
        """bfloat16 autocast for a bf16 student, else nothing."""
        if self.precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                yield
        else:
            yield

    def _start_stop(self) -> tuple[int, int]:
        """The indices of <START> and <STOP> in the tag dictionary (a CRF student's transitions)."""
        return self.label_dictionary.get_idx_for_item("<START>"), self.label_dictionary.get_idx_for_item("<STOP>")

    def _decode(self, emissions: torch.Tensor, lengths: torch.LongTensor) -> tuple[np.ndarray, np.ndarray]:
        """Tag ids and confidences [B, T] as Flair's decoders give them (Viterbi under a CRF, else softmax)."""
        emissions = emissions.detach().float().cpu()
        if self.use_crf:
            tags, scores = decoding.viterbi(emissions.numpy(), lengths.tolist(),
                                            self.crf.transitions.detach().float().cpu().numpy(),
                                            *self._start_stop())
            return tags, torch.softmax(torch.from_numpy(scores), dim=2).max(dim=2).values.numpy()
        confidences, tags = torch.softmax(emissions, dim=-1).max(dim=-1)  # torch's softmax, as Flair's
        return tags.numpy(), confidences.numpy()

    def tag_tokens(self, token_lists: Sequence[Sequence[str]], batch_size: int = 64
                   ) -> list[tuple[list[str], list[float]]]:
        """BIOES tags and confidences of tokenised sentences, without Flair objects (length-sorted batches)."""
        if not self.supports_tag_tokens:
            raise ValueError("tag_tokens needs swener's fastText embeddings of the token text; use predict()")
        results: list[tuple[list[str], list[float]]] = [([], []) for _ in token_lists]
        order = sorted((i for i, tokens in enumerate(token_lists) if tokens), key=lambda i: -len(token_lists[i]))
        names = [self.label_dictionary.get_item_for_index(i) for i in range(len(self.label_dictionary))]
        embeddings: CompactFastTextEmbeddings = self.embeddings  # type: ignore[assignment]
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), batch_size):
                    batch = order[start:start + batch_size]
                    embeddings.trim_oov_table()
                    ids, lengths = self._padded_ids([embeddings.word_ids(list(token_lists[i])) for i in batch])
                    vectors = self._cast_input(embeddings.lookup(ids))
                    if self.has_word_features:
                        vectors = self.extend_inputs(vectors, [token_lists[i] for i in batch])
                    with self._inference_precision():
                        emissions = self.emissions(vectors, lengths)
                    tags, confidences = self._decode(emissions, lengths)
                    for row, i in enumerate(batch):
                        n = len(token_lists[i])
                        results[i] = ([names[t] for t in tags[row, :n].tolist()], confidences[row, :n].tolist())
        finally:
            self.train(was_training)
        return results

    def predict(self, sentences: list[Sentence] | Sentence, mini_batch_size: int = 32,
                return_probabilities_for_all_classes: bool = False, verbose: bool = False,
                label_name: str | None = None, return_loss: bool = False, embedding_storage_mode: str = "none",
                force_token_predictions: bool = False):
        """Flair's `predict` (same labels, spans and loss) on the lean path; Flair's own for the rarer options."""
        if (not self.uses_lean_path or return_probabilities_for_all_classes or force_token_predictions
                or verbose or not self.predict_spans):
            return super().predict(sentences, mini_batch_size, return_probabilities_for_all_classes, verbose,
                                   label_name, return_loss, embedding_storage_mode, force_token_predictions)
        label_name = label_name or self.tag_type
        if not sentences:
            return sentences
        if not isinstance(sentences, list):
            sentences = [sentences] if isinstance(sentences, Sentence) else list(sentences)
        Sentence.set_context_for_sentences(sentences)
        ordered = sorted((s for s in sentences if len(s) > 0), key=len, reverse=True)
        names = [self.label_dictionary.get_item_for_index(i) for i in range(len(self.label_dictionary))]
        overall_loss, label_count = torch.zeros(1, device=flair.device), 0
        with torch.no_grad():
            for start in range(0, len(ordered), mini_batch_size):
                batch = ordered[start:start + mini_batch_size]
                tensor, lengths = self._prepare_tensors(batch)
                with self._inference_precision():
                    emissions = self.emissions(tensor, lengths)
                if return_loss:
                    loss = self._calculate_loss(self._scores(emissions.float(), lengths),
                                                self._prepare_label_tensor(batch))
                    overall_loss += loss[0]
                    label_count += loss[1]
                tags, confidences = self._decode(emissions, lengths)
                for row, sentence in enumerate(batch):
                    sentence.remove_labels(label_name)
                    n = len(sentence)
                    for indices, value, score in _flair_spans([names[t] for t in tags[row, :n].tolist()],
                                                              confidences[row, :n].tolist()):
                        sentence[indices[0]:indices[-1] + 1].add_label(label_name, value=value, score=score)
        if return_loss:
            return overall_loss, label_count
        return None



def _flair_spans(tags: list[str], scores: list[float]) -> list[tuple[list[int], str, float]]:
    """Flair's spans of BIOES tags as (token indices, type, score)."""
    return [(indices, value, score) for indices, score, value in get_spans_from_bio(tags, scores)]
