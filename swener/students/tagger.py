"""Student taggers: an encoder of the registry x a head {softmax, crf}, and the KD objective.

`StudentTagger` is a flair SequenceTagger: it saves, loads (`flair.nn.Classifier.load` after
`import swener`), predicts and evaluates as one. Its encoder is a module of
`swener.students.encoders` found by name (Flair has no CNN, window or ID-CNN encoder), and its
training loss mixes the gold labels with the teacher's cached distributions:

    loss = (1 - alpha) * hard_mean + alpha * kd_mean, both per-token means (`swener.kd.loss.LossTerms`),

handed to Flair's trainer times the batch's token count. The teacher's per-token
log-distributions (and, for `kd_target="kbest"`, its k best paths) ride on each training
sentence as metadata (`attach_soft_labels`), so the teacher never runs while a student trains.
"""
from __future__ import annotations

from typing import Any, Sequence

import flair
import numpy as np
import torch
from flair.data import Dictionary, Sentence
from flair.embeddings import TokenEmbeddings
from flair.models import SequenceTagger

from swener import config
from swener.data.tags import span_dictionary
from swener.kd import crf, crf_loss
from swener.kd import loss as kd
from swener.students import encoders
from swener.students.inputs import WordFeatures
from swener.students.lean import LeanPath
from swener.vectors.subwords import SubwordTable

FAMILIES = config.FAMILIES
KD_TARGETS = kd.KD_TARGETS
TEACHER_KEY = "teacher_logp"
KBEST_KEY = "teacher_kbest"  # (paths [k, tokens] on the teacher's tags, log-weights [k]) of a sentence
HARD_WEIGHT_KEY = "hard_weight"
PRECISIONS = ("float32", "bf16")
# parameter names of the two encoders before they moved into swener.students.encoders (models saved until 8a28b17)
LEGACY_PREFIXES = (("rnn.", "encoder_net.lstm."), ("convs.", "encoder_net.convs."))


def current_key(key: str) -> str:
    """A state-dict key of a model saved before the encoder registry, as it is named now."""
    for old, new in LEGACY_PREFIXES:
        if key.startswith(old):
            return new + key[len(old):]
    return key


class StudentTagger(LeanPath, WordFeatures, SequenceTagger):
    """A sequence tagger of the student grid, trained on gold labels and teacher distributions."""

    def __init__(
        self,
        embeddings: TokenEmbeddings,
        tag_dictionary: Dictionary,
        tag_type: str = "ner",
        encoder: str = "bilstm",
        use_crf: bool = True,
        hidden_size: int = config.STUDENT_HIDDEN,
        cnn_layers: int = 2,
        kernel_size: int = 3,
        alpha: float = config.PLAIN_ALPHA,
        temperature: float = kd.DEFAULT_TEMPERATURE,
        kd_target: str = kd.DEFAULT_KD_TARGET,
        teacher_tags: Sequence[str] | None = None,
        card: dict[str, Any] | None = None,
        precision: str = "float32",
        encoder_options: dict[str, Any] | None = None,
        chars: dict[str, Any] | None = None,
        subwords: SubwordTable | dict[str, Any] | None = None,
        subword_trainable: bool = False,
        **kwargs: Any,
    ) -> None:
        """Build a student.

        Args:
            embeddings: the word embeddings (swener's fastText class in the experiment).
            tag_dictionary: the span types (e.g. from `swener.data.tags.span_dictionary`); BIOES tags are derived.
            tag_type: the label type of the gold spans.
            encoder: a registered encoder (`swener.config.ENCODERS`): "bilstm" (one bidirectional LSTM
                layer), "cnn" (stacked masked Conv1d + ReLU), ...
            use_crf: a linear-chain CRF head, else a softmax per token.
            hidden_size: the encoder's size (LSTM units per direction, or channels).
            cnn_layers: number of convolution layers (CNN only; `encoder_options` for others).
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
            encoder_options: keyword options of the encoder class (saved with the model).
            chars: options of a per-word character CNN (`swener.students.inputs.CharCNN`: its `alphabet`,
                `dim`, `filters`, ...) whose features join the word vector; None: no character features.
            subwords: the teacher's subword table (`swener.vectors.subwords.SubwordTable`, or the saved options
                of `SubwordInput`) whose per-word vectors join the word vector; None: none.
            subword_trainable: train the subword piece table (else it stays frozen).
        """
        encoder_cls = encoders.encoder_class(encoder)
        if kd_target not in KD_TARGETS:
            raise ValueError(f"kd_target must be one of {KD_TARGETS}, got {kd_target!r}")
        if kd_target in kd.CRF_ONLY_TARGETS and not use_crf:
            raise ValueError(f"kd_target {kd_target!r} needs a CRF student (a family ending in -crf)")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        options = dict(encoder_options or {})
        if encoder == "cnn":
            options = {"layers": cnn_layers, "kernel_size": kernel_size, **options}
        kwargs.pop("use_rnn", None)  # Flair's own RNN is never built: the encoder is ours
        word_dropout = kwargs.pop("word_dropout", 0.05)  # Flair's default
        super().__init__(embeddings, tag_dictionary, tag_type, use_rnn=False, use_crf=use_crf,
                         hidden_size=hidden_size, word_dropout=word_dropout, **kwargs)
        if encoder_cls.recurrent and not use_crf and word_dropout > 0:  # as Flair does for its RNN
            self.use_word_dropout = word_dropout
            self.word_dropout = flair.nn.WordDropout(word_dropout)
        self.use_rnn = encoder_cls.recurrent
        width = self.embeddings.embedding_length + self._build_inputs(chars, subwords, subword_trainable)
        if self.has_word_features and self.reproject_embeddings:  # Flair sized it for the word vector alone
            self.embedding2nn = torch.nn.Linear(width, width)
        self.encoder_net = encoders.build(encoder, width, hidden_size, **options)
        self.linear = torch.nn.Linear(self.encoder_net.output_size, len(self.label_dictionary))
        self.encoder = encoder
        self.cnn_layers, self.kernel_size = options.get("layers", cnn_layers), options.get("kernel_size", kernel_size)
        self.alpha, self.temperature, self.kd_target = alpha, temperature, kd_target
        self.card = dict(card or {})
        self.precision = precision
        self.lean = True  # the lean batch path; False gives Flair's own (for comparisons), not saved
        self.teacher_tags: list[str] | None = None
        self.to(flair.device)
        if teacher_tags is not None:
            self.set_teacher_tags(teacher_tags)

    def set_teacher_tags(self, teacher_tags: Sequence[str]) -> None:
        """Fix the teacher's tag names; they are mapped onto this student's tags by name."""
        student = [self.label_dictionary.get_item_for_index(i) for i in range(len(self.label_dictionary))]
        self._teacher_index = kd.tag_index(list(teacher_tags), student)
        self._teacher_to_student = torch.tensor([student.index(tag) for tag in teacher_tags], dtype=torch.long)
        self.teacher_tags = list(teacher_tags)

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
        sentence_tensor = self.encoder_net(sentence_tensor, lengths)
        if self.use_dropout:
            sentence_tensor = self.dropout(sentence_tensor)
        if self.use_locked_dropout:
            sentence_tensor = self.locked_dropout(sentence_tensor)
        return self.linear(sentence_tensor)

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
            return crf.tagger_marginals(self, scores, lengths)
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
        log_z = None  # the lean CRF's log Z, computed once for the hard and the k-best term
        if self.uses_lean_path:
            if self.use_crf:
                log_z = crf_loss.log_partition(emissions, lengths, self.crf.transitions, *self._start_stop())
            hard = self._lean_hard_loss(sentences, emissions, lengths, gold, log_z)
        else:
            scores = self._scores(emissions, lengths)
            hard = self._hard_loss(sentences, scores, gold, lengths)
        hard_tokens = sum(w * len(s) for w, s in zip(self._hard_weights(sentences), sentences))
        if not soft:
            return kd.LossTerms(hard, hard_tokens, None, 0, len(gold))
        if self.kd_target == "kbest":
            soft_sum, soft_tokens = self._kbest_term(sentences, emissions, lengths, log_z)
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

    def _kbest_term(self, sentences: list[Sentence], emissions: torch.Tensor, lengths: torch.LongTensor,
                    log_z: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
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
        nll = kd.kbest_nll(emissions, lengths, paths.to(emissions.device), log_weights.to(emissions.device),
                           self.crf.transitions, *self._start_stop(), log_z=log_z)
        return nll.sum(), tokens

    def _lean_hard_loss(self, sentences: list[Sentence], emissions: torch.Tensor, lengths: torch.LongTensor,
                        gold: torch.Tensor, log_z: torch.Tensor | None = None) -> torch.Tensor:
        """Flair's summed loss on gold labels (CRF: `crf_loss.crf_nll`, given its `log_z` if computed), sentences
        weighted by their hard weight."""
        weights = self._hard_weights(sentences)
        mask = torch.arange(emissions.size(1), device=emissions.device)[None, :] < lengths.to(emissions.device)[:, None]
        if self.use_crf:
            tags = crf_loss.pad_tags(gold, lengths, emissions.size(1))
            per_sentence = crf_loss.crf_nll(emissions, lengths, tags, self.crf.transitions, *self._start_stop(),
                                            log_z=log_z)
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
            start, stop = self._start_stop()
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
        return {**super()._get_state_dict(), "encoder": self.encoder, "encoder_options": self.encoder_net.options(),
                "cnn_layers": self.cnn_layers, "kernel_size": self.kernel_size, "alpha": self.alpha,
                "temperature": self.temperature, "kd_target": self.kd_target, "teacher_tags": self.teacher_tags,
                "card": self.card, "cnn_hidden_size": self.hidden_size, "precision": self.precision,
                "chars": self.char_net.options() if self.char_net is not None else None,
                "subwords": self.subword_net.options() if self.subword_net is not None else None}

    @classmethod
    def _init_model_with_state_dict(cls, state: dict, **kwargs):
        state["state_dict"] = {current_key(key): value for key, value in state["state_dict"].items()}
        return super()._init_model_with_state_dict(
            state, encoder=state["encoder"], cnn_layers=state["cnn_layers"], kernel_size=state["kernel_size"],
            encoder_options=state.get("encoder_options"), alpha=state["alpha"], temperature=state["temperature"],
            kd_target=state["kd_target"], teacher_tags=state["teacher_tags"], card=state["card"],
            precision=state.get("precision", "float32"), chars=state.get("chars"), subwords=state.get("subwords"),
            **kwargs)


def attach_soft_labels(sentences: list[Sentence], soft, hard_weight: float = 1.0) -> None:
    """Put each sentence's teacher log-distribution (a `SoftLabels` of the same sentences) on it, and its k best
    paths."""
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
    """A student of one family (`swener.config.FAMILIES`: "bilstm-crf", "cnn", ...) for the given entity types."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    encoder, head = FAMILIES[family]
    return StudentTagger(embeddings, span_dictionary(types), "ner", encoder=encoder, use_crf=head == "crf", **kwargs)
