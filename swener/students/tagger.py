"""Student taggers: one grid, encoder {bilstm, cnn} x head {softmax, crf}, and the KD objective.

`StudentTagger` is a flair SequenceTagger: it saves, loads (`flair.nn.Classifier.load` after
`import swener`), predicts and evaluates as one. It adds a CNN encoder (Flair has none) and a
training loss that mixes the gold labels with the teacher's cached distributions:

    loss = (1 - alpha) * hard_mean + alpha * kd_mean, both per-token means (`swener.kd.loss.LossTerms`),

handed to Flair's trainer times the batch's token count. The teacher's per-token
log-distributions (and, for `kd_target="kbest"`, its k best paths) ride on each training
sentence as metadata (`attach_soft_labels`), so the teacher never runs while a student trains.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import flair
import numpy as np
import torch
from flair.data import Dictionary, Sentence, get_spans_from_bio
from flair.embeddings import TokenEmbeddings
from flair.models import SequenceTagger
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from swener.kd import crf
from swener.kd import crf_loss
from swener.kd import decoding
from swener.kd import loss as kd
from swener.data.tags import span_dictionary
from swener.vectors.embeddings import CompactFastTextEmbeddings

FAMILIES: dict[str, tuple[str, str]] = {
    "bilstm-crf": ("bilstm", "crf"),
    "bilstm": ("bilstm", "softmax"),
    "cnn": ("cnn", "softmax"),
    "cnn-crf": ("cnn", "crf"),
}
KD_TARGETS = kd.KD_TARGETS
TEACHER_KEY = "teacher_logp"
KBEST_KEY = "teacher_kbest"  # (paths [k, tokens] on the teacher's tags, log-weights [k]) of a sentence
HARD_WEIGHT_KEY = "hard_weight"
PRECISIONS = ("float32", "bf16")
IDS_ATTR = "_swener_ids"  # (id space, word ids) cached on a Flair Sentence by the lean path
GOLD_ATTR = "_swener_gold"  # (tag dictionary size, gold tag ids) cached on a training Sentence


class StudentTagger(SequenceTagger):
    """A sequence tagger of the student grid, trained on gold labels and teacher distributions."""

    def __init__(
        self,
        embeddings: TokenEmbeddings,
        tag_dictionary: Dictionary,
        tag_type: str = "ner",
        encoder: str = "bilstm",
        use_crf: bool = True,
        hidden_size: int = 256,
        cnn_layers: int = 2,
        kernel_size: int = 3,
        alpha: float = 0.0,
        temperature: float = kd.DEFAULT_TEMPERATURE,
        kd_target: str = kd.DEFAULT_KD_TARGET,
        teacher_tags: Sequence[str] | None = None,
        card: dict[str, Any] | None = None,
        precision: str = "float32",
        **kwargs: Any,
    ) -> None:
        """Build a student.

        Args:
            embeddings: the word embeddings (swener's fastText class in the experiment).
            tag_dictionary: the span types (e.g. from `swener.data.tags.span_dictionary`); BIOES tags are derived.
            tag_type: the label type of the gold spans.
            encoder: "bilstm" (one bidirectional LSTM layer) or "cnn" (stacked masked Conv1d + ReLU).
            use_crf: a linear-chain CRF head, else a softmax per token.
            hidden_size: LSTM size per direction, or CNN channels.
            cnn_layers: number of convolution layers (CNN only).
            kernel_size: odd convolution width (CNN only).
            alpha: share of the KD term's per-token mean in the loss; 0 is plain training on gold
                labels (a trainer plugin, `swener.kd.plugins.AlphaSchedule`, may change it per epoch).
            temperature: T of the KD term (not used by "kbest").
            kd_target: what is matched to the teacher under a CRF: the posterior "marginals"
                (forward-backward, the default), the softmax of the "emissions", or the teacher's
                k best paths ("kbest": weighted path NLL; CRF students only).
            teacher_tags: the tag names of the teacher distributions (the cache's header).
            card: the model card (corpus, embeddings, teacher, seed, scores, licences).
            precision: "float32", or "bf16" to predict under bfloat16 autocast (training stays float32).
        """
        if encoder not in ("bilstm", "cnn"):
            raise ValueError(f"encoder must be 'bilstm' or 'cnn', got {encoder!r}")
        if kd_target not in KD_TARGETS:
            raise ValueError(f"kd_target must be one of {KD_TARGETS}, got {kd_target!r}")
        if kd_target in kd.CRF_ONLY_TARGETS and not use_crf:
            raise ValueError(f"kd_target {kd_target!r} needs a CRF student (bilstm-crf or cnn-crf)")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep the sequence length, got {kernel_size}")
        kwargs.pop("use_rnn", None)  # derived from the encoder (Flair's loader passes it back)
        super().__init__(embeddings, tag_dictionary, tag_type, use_rnn=encoder == "bilstm", use_crf=use_crf,
                         hidden_size=hidden_size, **kwargs)
        self.encoder, self.cnn_layers, self.kernel_size = encoder, cnn_layers, kernel_size
        self.alpha, self.temperature, self.kd_target = alpha, temperature, kd_target
        self.card = dict(card or {})
        self.precision = precision
        self.lean = True  # the lean batch path; False gives Flair's own (for comparisons), not saved
        self.teacher_tags: list[str] | None = None
        if encoder == "cnn":
            width = self.embeddings.embedding_length
            self.convs = torch.nn.ModuleList(
                torch.nn.Conv1d(width if i == 0 else hidden_size, hidden_size, kernel_size, padding=kernel_size // 2)
                for i in range(cnn_layers))
            self.linear = torch.nn.Linear(hidden_size, len(self.label_dictionary))
        if teacher_tags is not None:
            self.set_teacher_tags(teacher_tags)

    def set_teacher_tags(self, teacher_tags: Sequence[str]) -> None:
        """Fix the teacher's tag names; they are mapped onto this student's tags by name."""
        student = [self.label_dictionary.get_item_for_index(i) for i in range(len(self.label_dictionary))]
        self._teacher_index = kd.tag_index(list(teacher_tags), student)
        self._teacher_to_student = torch.tensor([student.index(tag) for tag in teacher_tags], dtype=torch.long)
        self.teacher_tags = list(teacher_tags)

    # ----- the lean batch path -----
    @property
    def uses_lean_path(self) -> bool:
        """Whether batches take the lean path (swener's embeddings, and not switched off with `lean = False`)."""
        return self.lean and isinstance(self.embeddings, CompactFastTextEmbeddings)

    @property
    def supports_tag_tokens(self) -> bool:
        """Whether `tag_tokens` works: the lean path over the token text (not a token label)."""
        return self.uses_lean_path and self.embeddings.field is None

    def _sentence_ids(self, sentence: Sentence) -> list[int]:
        """The word ids of a sentence, looked up once and kept on it (until the id space changes)."""
        embeddings: CompactFastTextEmbeddings = self.embeddings  # type: ignore[assignment]
        cached = getattr(sentence, IDS_ATTR, None)
        if cached is not None and cached[0] == embeddings.ids_key and len(cached[1]) == len(sentence):
            return cached[1]
        field = embeddings.field
        texts = [t.text if field is None else t.get_label(field).value for t in sentence.tokens]
        ids = embeddings.word_ids(texts)
        setattr(sentence, IDS_ATTR, (embeddings.ids_key, ids))
        return ids

    def _padded_ids(self, id_lists: Sequence[list[int]]) -> tuple[torch.Tensor, torch.LongTensor]:
        """[B, T] ids padded with -1 (a zero vector) and the lengths."""
        lengths = [len(ids) for ids in id_lists]
        longest = max(lengths)
        padded = torch.tensor([ids + [-1] * (longest - len(ids)) for ids in id_lists], dtype=torch.long)
        return padded.to(flair.device), torch.LongTensor(lengths)

    def _prepare_tensors(self, data_points: list[Sentence] | Sentence) -> tuple[torch.Tensor, torch.LongTensor]:
        """[B, T, D] word vectors and lengths: one gather per batch, nothing stored on the tokens."""
        if not self.uses_lean_path:
            return super()._prepare_tensors(data_points)
        sentences = [data_points] if not isinstance(data_points, list) else data_points
        self.embeddings.trim_oov_table()
        ids, lengths = self._padded_ids([self._sentence_ids(s) for s in sentences])
        return self._cast_input(self.embeddings.lookup(ids)), lengths

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

    def _decode(self, emissions: torch.Tensor, lengths: torch.LongTensor) -> tuple[np.ndarray, np.ndarray]:
        """Tag ids and confidences [B, T] as Flair's decoders give them (Viterbi under a CRF, else softmax)."""
        emissions = emissions.detach().float().cpu()
        if self.use_crf:
            tags, scores = decoding.viterbi(emissions.numpy(), lengths.tolist(),
                                            self.crf.transitions.detach().float().cpu().numpy(),
                                            self.label_dictionary.get_idx_for_item("<START>"),
                                            self.label_dictionary.get_idx_for_item("<STOP>"))
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
                    with self._inference_precision():
                        emissions = self.emissions(self._cast_input(embeddings.lookup(ids)), lengths)
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

    # ----- encoding -----
    def emissions(self, sentence_tensor: torch.Tensor, lengths: torch.LongTensor) -> torch.Tensor:
        """Per-token tag scores [B, T, K] before the CRF."""
        if self.use_dropout:
            sentence_tensor = self.dropout(sentence_tensor)
        if self.use_word_dropout:
            sentence_tensor = self.word_dropout(sentence_tensor)
        if self.use_locked_dropout:
            sentence_tensor = self.locked_dropout(sentence_tensor)
        if self.reproject_embeddings:
            sentence_tensor = self.embedding2nn(sentence_tensor)
        if self.encoder == "bilstm":
            packed = pack_padded_sequence(sentence_tensor, lengths, batch_first=True)
            output, _ = self.rnn(packed)
            sentence_tensor, _ = pad_packed_sequence(output, batch_first=True)
        else:
            sentence_tensor = self._convolve(sentence_tensor, lengths)
        if self.use_dropout:
            sentence_tensor = self.dropout(sentence_tensor)
        if self.use_locked_dropout:
            sentence_tensor = self.locked_dropout(sentence_tensor)
        return self.linear(sentence_tensor)

    def _convolve(self, x: torch.Tensor, lengths: torch.LongTensor) -> torch.Tensor:
        """The CNN encoder: padding is zeroed before every layer so it never leaks into a sentence."""
        mask = (torch.arange(x.size(1), device=x.device)[None, :] < lengths.to(x.device)[:, None]).unsqueeze(1)
        x = x.transpose(1, 2)
        for conv in self.convs:
            x = torch.relu(conv(x * mask))
        return (x * mask).transpose(1, 2)

    def _scores(self, emissions: torch.Tensor, lengths: torch.LongTensor):
        if self.use_crf:
            return self.crf(emissions), lengths, self.crf.transitions
        return self._get_scores_from_features(emissions, lengths)

    def forward(self, sentence_tensor: torch.Tensor, lengths: torch.LongTensor):
        """Scores as Flair's SequenceTagger returns them (CRF features or flat token scores)."""
        return self._scores(self.emissions(sentence_tensor, lengths), lengths)

    # ----- the objective -----
    def student_log_distribution(self, emissions: torch.Tensor, scores, lengths: torch.LongTensor) -> torch.Tensor:
        """The student's per-token log-distribution [B, T, K] that KD matches to the teacher."""
        if self.use_crf and self.kd_target == "marginals":
            features, _, transitions = scores
            return crf.marginals(features, lengths, self.label_dictionary.get_idx_for_item("<START>"),
                                 self.label_dictionary.get_idx_for_item("<STOP>"), transitions)
        return torch.log_softmax(emissions, dim=-1)

    def forward_loss(self, sentences: list[Sentence]) -> tuple[torch.Tensor, int]:
        """The loss handed to Flair, tokens x ((1 - alpha) * hard_mean + alpha * kd_mean), and the token count."""
        if len(sentences) == 0:
            return torch.tensor(0.0, requires_grad=True), 0
        if self.alpha == 0.0 and not self.uses_lean_path:
            return super().forward_loss(sentences)  # Flair's own plain loss
        terms = self.loss_terms(sentences)
        return terms.loss(self.alpha), terms.scale

    def loss_terms(self, sentences: list[Sentence], soft: bool | None = None) -> kd.LossTerms:
        """The hard and KD sums of a batch with their token counts (`soft`: compute the KD term; default alpha > 0)."""
        soft = self.alpha > 0.0 if soft is None else soft
        sentences = sorted(sentences, key=len, reverse=True)
        gold = self._prepare_label_tensor(sentences)
        sentence_tensor, lengths = self._prepare_tensors(sentences)
        emissions = self.emissions(sentence_tensor, lengths)
        scores = None
        if self.uses_lean_path:
            hard = self._lean_hard_loss(sentences, emissions, lengths, gold)
        else:
            scores = self._scores(emissions, lengths)
            hard = self._hard_loss(sentences, scores, gold, lengths)
        hard_tokens = sum(w * len(s) for w, s in zip(self._hard_weights(sentences), sentences))
        if not soft:
            return kd.LossTerms(hard, hard_tokens, None, 0, len(gold))
        if self.kd_target == "kbest":
            soft_sum, soft_tokens = self._kbest_term(sentences, emissions, lengths)
        else:
            if scores is None and self.use_crf and self.kd_target == "marginals":
                scores = self._scores(emissions, lengths)
            teacher, mask = self._teacher_batch(sentences, emissions.shape)
            student = self.student_log_distribution(emissions, scores, lengths)
            soft_sum, soft_tokens = kd.kd_loss(student, teacher, self.temperature, mask), int(mask.sum())
        return kd.LossTerms(hard, hard_tokens, soft_sum, soft_tokens, len(gold))

    @staticmethod
    def _hard_weights(sentences: list[Sentence]) -> list[float]:
        """Each sentence's hard weight (1 unless a transfer sentence's 0 is attached)."""
        return [float(s.get_metadata(HARD_WEIGHT_KEY)) if s.has_metadata(HARD_WEIGHT_KEY) else 1.0 for s in sentences]

    def _kbest_term(self, sentences: list[Sentence], emissions: torch.Tensor, lengths: torch.LongTensor
                    ) -> tuple[torch.Tensor, int]:
        """The summed weighted NLL of the teacher's k best paths, and the tokens of the sentences that have them."""
        if self.teacher_tags is None:
            raise ValueError("a KD student (alpha > 0) needs teacher_tags: attach soft labels first")
        rows = [s.get_metadata(KBEST_KEY) if s.has_metadata(KBEST_KEY) else None for s in sentences]
        present = [r for r in rows if r is not None]
        if not present:
            raise ValueError("kd_target 'kbest' needs the teacher's k best paths on the sentences: the cache has "
                             "none; add them with `swener teacher kbest`")
        k = max(len(r[1]) for r in present)
        batch, length, _ = emissions.shape
        paths = torch.zeros(batch, k, length, dtype=torch.long)
        log_weights = torch.full((batch, k), float("-inf"))
        tokens = 0
        for i, row in enumerate(rows):
            if row is None:
                continue
            teacher_paths = torch.as_tensor(np.asarray(row[0], dtype=np.int64))
            paths[i, :teacher_paths.shape[0], :teacher_paths.shape[1]] = self._teacher_to_student[teacher_paths]
            logp = torch.as_tensor(np.asarray(row[1], dtype=np.float32))
            log_weights[i, :len(logp)] = torch.log_softmax(logp, dim=0)  # renormalised over the kept paths
            tokens += len(sentences[i])
        start = self.label_dictionary.get_idx_for_item("<START>")
        stop = self.label_dictionary.get_idx_for_item("<STOP>")
        nll = kd.kbest_nll(emissions, lengths, paths.to(emissions.device), log_weights.to(emissions.device),
                           self.crf.transitions, start, stop)
        return nll.sum(), tokens

    def _lean_hard_loss(self, sentences: list[Sentence], emissions: torch.Tensor, lengths: torch.LongTensor,
                        gold: torch.Tensor) -> torch.Tensor:
        """Flair's summed loss on gold labels (CRF: `crf_loss.crf_nll`), sentences weighted by their hard weight."""
        weights = self._hard_weights(sentences)
        mask = torch.arange(emissions.size(1), device=emissions.device)[None, :] < lengths.to(emissions.device)[:, None]
        if self.use_crf:
            tags = crf_loss.pad_tags(gold, lengths, emissions.size(1))
            per_sentence = crf_loss.crf_nll(emissions, lengths, tags, self.crf.transitions,
                                            self.label_dictionary.get_idx_for_item("<START>"),
                                            self.label_dictionary.get_idx_for_item("<STOP>"))
            if all(w == 1.0 for w in weights):
                return per_sentence.sum()
            return (per_sentence * torch.tensor(weights, device=per_sentence.device)).sum()
        flat = emissions[mask]
        if all(w == 1.0 for w in weights):
            return self.loss_function(flat, gold)
        per_token = torch.nn.functional.cross_entropy(flat, gold, reduction="none")
        return (per_token * torch.repeat_interleave(torch.tensor(weights), lengths).to(per_token.device)).sum()

    def _hard_loss(self, sentences: list[Sentence], scores, gold: torch.Tensor, lengths: torch.LongTensor):
        """Flair's summed loss on gold labels; sentences of a transfer set (hard weight 0) are left out."""
        weights = self._hard_weights(sentences)
        if all(w == 1.0 for w in weights):
            return self._calculate_loss(scores, gold)[0]
        weight = torch.tensor(weights)
        if self.use_crf:
            features, _, transitions = scores
            start = self.label_dictionary.get_idx_for_item("<START>")
            stop = self.label_dictionary.get_idx_for_item("<STOP>")
            tags = torch.full(features.shape[:2], stop, dtype=torch.long)
            for i, chunk in enumerate(torch.split(gold, lengths.tolist())):
                tags[i, :len(chunk)] = chunk
            per_sentence = (crf.log_partition(features, lengths, start, stop, transitions)
                            - crf.sequence_score(features, lengths, tags, start, stop, transitions))
            return (per_sentence * weight).sum()
        per_token = torch.nn.functional.cross_entropy(scores, gold, reduction="none")
        return (per_token * torch.repeat_interleave(weight, lengths)).sum()

    def _teacher_batch(self, sentences: list[Sentence], shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher log-probs on the student's tags [B, T, K] and the mask of tokens that have them."""
        if self.teacher_tags is None:
            raise ValueError("a KD student (alpha > 0) needs teacher_tags: attach soft labels first")
        batch, length, _ = shape
        teacher = torch.zeros(batch, length, len(self.teacher_tags))
        mask = torch.zeros(batch, length, dtype=torch.bool)
        for i, sentence in enumerate(sentences):
            if sentence.has_metadata(TEACHER_KEY):
                rows = torch.from_numpy(np.asarray(sentence.get_metadata(TEACHER_KEY), dtype=np.float32))
                teacher[i, :len(rows)] = rows
                mask[i, :len(rows)] = True
        return kd.to_student_tags(teacher, self._teacher_index), mask

    # ----- saving and loading -----
    def _get_state_dict(self) -> dict:
        return {**super()._get_state_dict(), "encoder": self.encoder, "cnn_layers": self.cnn_layers,
                "kernel_size": self.kernel_size, "alpha": self.alpha, "temperature": self.temperature,
                "kd_target": self.kd_target, "teacher_tags": self.teacher_tags, "card": self.card,
                "cnn_hidden_size": self.hidden_size, "precision": self.precision}

    @classmethod
    def _init_model_with_state_dict(cls, state: dict, **kwargs):
        return super()._init_model_with_state_dict(
            state, encoder=state["encoder"], cnn_layers=state["cnn_layers"], kernel_size=state["kernel_size"],
            alpha=state["alpha"], temperature=state["temperature"], kd_target=state["kd_target"],
            teacher_tags=state["teacher_tags"], card=state["card"], precision=state.get("precision", "float32"),
            **kwargs)


def _flair_spans(tags: list[str], scores: list[float]) -> list[tuple[list[int], str, float]]:
    """Flair's spans of BIOES tags as (token indices, type, score)."""
    return [(indices, value, score) for indices, score, value in get_spans_from_bio(tags, scores)]


def attach_soft_labels(sentences: list[Sentence], soft, hard_weight: float = 1.0) -> None:
    """Put each sentence's teacher log-distribution (a `SoftLabels` of the same sentences) on it, and its k best paths."""
    if len(sentences) != len(soft):
        raise ValueError(f"{len(sentences)} sentences but {len(soft)} cached distributions")
    kbest = getattr(soft, "kbest_paths", None) is not None
    for i, sentence in enumerate(sentences):
        sentence.add_metadata(TEACHER_KEY, soft.sentence(i))
        if kbest:
            sentence.add_metadata(KBEST_KEY, soft.sentence_kbest(i))
        if hard_weight != 1.0:
            sentence.add_metadata(HARD_WEIGHT_KEY, hard_weight)


def build_student(family: str, embeddings: TokenEmbeddings, types: Sequence[str], **kwargs: Any) -> StudentTagger:
    """A student of one family ("bilstm-crf", "bilstm", "cnn", "cnn-crf") for the given entity types."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    encoder, head = FAMILIES[family]
    return StudentTagger(embeddings, span_dictionary(types), "ner", encoder=encoder, use_crf=head == "crf", **kwargs)
