"""A student's inputs besides its fastText vector: character features and the teacher's subword vectors.

Each word's input is [fastText vector; subword vector; character features] (the parts it has,
in that order), built from the token texts of a batch (`WordFeatures.extend_inputs`), the same on the
lean path and on Flair's. Both modules save their options with the tagger (`options()`, the
state-dict round trip) and their tensors in its state dict; a tagger without them (every model
saved before them) is built and runs exactly as before.

- `CharCNN` (Ma & Hovy 2016): character embeddings, one convolution of width 3 over a word's
  characters, max-pooled over the word; ids from `swener.vectors.chars.CharIds`.
- `SubwordInput`: the mean (or first) of the teacher's (PCA-reduced) input embeddings of a
  word's pieces (`swener.vectors.subwords.SubwordTable`), frozen (a float16 buffer) or
  trainable (a float32 `nn.Embedding`, so an unseen word's vector comes from trained pieces too).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from swener import config
from swener.vectors.chars import CharIds
from swener.vectors.subwords import SubwordTable


class CharCNN(torch.nn.Module):
    """Word characters [B, T, C] ids -> [B, T, filters]: embedding, Conv1d, max over the word's characters."""

    def __init__(self, alphabet: Sequence[str], dim: int = config.CHAR_DIM, filters: int = config.CHAR_FILTERS,
                 width: int = config.CHAR_WIDTH, max_length: int = config.CHAR_MAX_LENGTH) -> None:
        if width % 2 != 1 or dim < 1 or filters < 1:
            raise ValueError(f"a character CNN needs an odd width and positive sizes, got width {width}, "
                             f"dim {dim}, filters {filters}")
        super().__init__()
        self.ids = CharIds(alphabet, max_length)
        self.dim, self.filters, self.width = int(dim), int(filters), int(width)
        self.embedding = torch.nn.Embedding(len(self.ids), self.dim, padding_idx=0)
        self.conv = torch.nn.Conv1d(self.dim, self.filters, self.width, padding=self.width // 2)
        self.output_size = self.filters

    def options(self) -> dict[str, Any]:
        """The constructor's arguments, saved with the tagger."""
        return {"alphabet": list(self.ids.chars), "dim": self.dim, "filters": self.filters, "width": self.width,
                "max_length": self.ids.max_length}

    def char_ids(self, text_lists: Sequence[Sequence[str]], steps: int) -> torch.Tensor:
        """[B, T, C] ids of a batch's words (0: padding)."""
        return torch.from_numpy(self.ids.batch(text_lists, steps))

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        batch, steps, width = chars.shape
        flat = chars.reshape(batch * steps, width)
        x = self.conv(self.embedding(flat).transpose(1, 2))  # [N, filters, C]
        present = (flat > 0).unsqueeze(1)
        pooled = x.masked_fill(~present, -1e4).max(dim=2).values  # padding characters never win
        words = present.any(dim=2).to(pooled.dtype)  # padding words give zeros
        return (pooled * words).reshape(batch, steps, self.filters)


class SubwordInput(torch.nn.Module):
    """Token texts -> [B, T, d]: the mean (or first) of the (trainable or frozen) rows of each word's pieces."""

    def __init__(self, tokenizer_json: str, words: Sequence[str], pieces: int, dim: int, piece_count: int,
                 pooling: str = "mean", trainable: bool = False, meta: dict | None = None,
                 table: SubwordTable | None = None) -> None:
        """Built from `table` (a new model), or from the saved options with the tensors from the state dict."""
        super().__init__()
        self.trainable, self.meta = bool(trainable), dict(meta or {})
        self.output_size = int(dim)
        offsets = np.zeros(len(words) + 1, dtype=np.int64) if table is None else table.offsets
        offsets[-1] = piece_count  # a placeholder until the state dict fills it
        piece_ids = np.zeros(piece_count, dtype=np.int32) if table is None else table.piece_ids
        matrix = np.zeros((pieces, dim), dtype=np.float32) if table is None else table.pieces.astype(np.float32)
        self.register_buffer("word_offsets", torch.from_numpy(np.array(offsets, dtype=np.int64)))
        self.register_buffer("word_pieces", torch.from_numpy(np.array(piece_ids, dtype=np.int32)))
        if self.trainable:
            self.table = torch.nn.Embedding(pieces, dim)
            with torch.no_grad():
                self.table.weight.copy_(torch.from_numpy(matrix))
        else:
            self.register_buffer("piece_vectors", torch.from_numpy(matrix.astype(np.float16)))
        self._lookup = SubwordTable(tokenizer_json, np.zeros((0, dim), dtype=np.float16), list(words), offsets,
                                    piece_ids, pooling, self.meta)

    @classmethod
    def from_table(cls, table: SubwordTable, trainable: bool = False) -> "SubwordInput":
        """A new input from a built table (`swener.vectors.subwords.build_table`)."""
        return cls(table.tokenizer_json, table.words, table.pieces.shape[0], table.dim, len(table.piece_ids),
                   table.pooling, trainable, table.meta, table=table)

    def options(self) -> dict[str, Any]:
        """The constructor's arguments, saved with the tagger (the tensors go into its state dict)."""
        lookup = self._lookup
        return {"tokenizer_json": lookup.tokenizer_json, "words": list(lookup.words), "pieces": self.pieces,
                "dim": self.output_size, "piece_count": len(lookup.piece_ids), "pooling": lookup.pooling,
                "trainable": self.trainable, "meta": self.meta}

    @property
    def pieces(self) -> int:
        """The rows of the piece table."""
        return int((self.table.weight if self.trainable else self.piece_vectors).shape[0])

    def _load_from_state_dict(self, state_dict, prefix, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._lookup.offsets = self.word_offsets.cpu().numpy().astype(np.int64)  # the loaded known words' pieces
        self._lookup.piece_ids = self.word_pieces.cpu().numpy().astype(np.int32)

    def table_for_export(self) -> SubwordTable:
        """The numpy table an exported tagger looks words up in (float16 pieces, as trained)."""
        matrix = self.table.weight.detach() if self.trainable else self.piece_vectors
        lookup = self._lookup
        return SubwordTable(lookup.tokenizer_json, matrix.float().cpu().numpy().astype(np.float16),
                            list(lookup.words), lookup.offsets, lookup.piece_ids, lookup.pooling, self.meta)

    def forward(self, text_lists: Sequence[Sequence[str]], steps: int) -> torch.Tensor:
        flat: list[int] = []
        slots: list[int] = []
        self._lookup.prepare([text for texts in text_lists for text in texts])
        for b, texts in enumerate(text_lists):
            for t, text in enumerate(texts):
                ids = self._lookup.pieces_of(text)
                flat.extend(ids)
                slots.extend([b * steps + t] * len(ids))
        matrix = self.table.weight if self.trainable else self.piece_vectors
        out = torch.zeros(len(text_lists) * steps, self.output_size, device=matrix.device)
        if flat:
            slot = torch.tensor(slots, device=matrix.device)
            rows = matrix[torch.tensor(flat, device=matrix.device)].float()
            counts = torch.zeros(len(out), device=matrix.device).index_add_(0, slot, torch.ones(len(flat)))
            out = out.index_add(0, slot, rows) / counts.clamp(min=1.0).unsqueeze(1)
        return out.reshape(len(text_lists), steps, self.output_size)


class WordFeatures:
    """Mixin of the student tagger: the extra input parts (`char_net`, `subword_net`; either may be None)."""

    char_net: CharCNN | None
    subword_net: SubwordInput | None

    def _build_inputs(self, chars: dict | None, subwords: SubwordTable | dict | None, trainable: bool) -> int:
        """Make the input modules; returns the width they add to the word vector."""
        self.char_net = CharCNN(**chars) if chars else None
        if isinstance(subwords, SubwordTable):
            self.subword_net = SubwordInput.from_table(subwords, trainable)
        else:
            self.subword_net = SubwordInput(**subwords) if subwords else None
        return sum(m.output_size for m in (self.subword_net, self.char_net) if m is not None)

    @property
    def has_word_features(self) -> bool:
        """Whether the word vector is extended (character features or subword vectors)."""
        return self.char_net is not None or self.subword_net is not None

    def input_parts(self) -> list[tuple[str, int]]:
        """The parts of a word's input in order, with their widths (what an export must feed)."""
        parts = [("vectors", self.embeddings.embedding_length)]
        if self.subword_net is not None:
            parts.append(("subwords", self.subword_net.output_size))
        if self.char_net is not None:
            parts.append(("chars", self.char_net.output_size))
        return parts

    def combine_inputs(self, vectors: torch.Tensor, subwords: torch.Tensor | None = None,
                chars: torch.Tensor | None = None) -> torch.Tensor:
        """[vectors; subword vectors; CharCNN(char ids)] along the last axis: the tensor `emissions` takes.

        The traceable half of `extend_inputs` (an ONNX export feeds `vectors`, `subwords` [B, T, d] float32 and
        `chars` [B, T, C] int64 and calls this, then `emissions`)."""
        parts = [vectors]
        if self.subword_net is not None:
            parts.append(subwords.to(vectors.dtype))
        if self.char_net is not None:
            parts.append(self.char_net(chars).to(vectors.dtype))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else vectors

    def extend_inputs(self, vectors: torch.Tensor, text_lists: Sequence[Sequence[str]]) -> torch.Tensor:
        """The word vectors [B, T, D] of a batch's token texts with the extra parts appended."""
        if not self.has_word_features:
            return vectors
        steps = vectors.shape[1]
        subwords = self.subword_net(text_lists, steps).to(vectors.device) if self.subword_net is not None else None
        chars = self.char_net.char_ids(text_lists, steps).to(vectors.device) if self.char_net is not None else None
        return self.combine_inputs(vectors, subwords, chars)


class ExportGraph(torch.nn.Module):
    """The student's graph for an ONNX export: (vectors, [subwords], [chars], lengths) -> emissions.

    Inputs, in `export_inputs` order: "vectors" [B, T, D] float32 (fastText, as now), "subwords" [B, T, d]
    float32 (`SubwordTable.vectors` of the token texts; only with a subword input), "chars" [B, T, C] int64
    (`CharIds.batch`; only with a character CNN), "lengths" [B] int64.
    """

    def __init__(self, tagger: Any) -> None:
        super().__init__()
        self.student = tagger
        self.names = [name for name, _ in tagger.input_parts()]
        self.eval()  # the exporter restores the mode it found, so a new (training) wrapper would leave dropout on

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        given = dict(zip([*self.names, "lengths"], inputs))
        vectors = self.student.combine_inputs(given["vectors"], given.get("subwords"), given.get("chars"))
        return self.student.emissions(vectors, given["lengths"])


def export_inputs(tagger: Any, batch: int = 2, steps: int = 5) -> tuple[tuple[torch.Tensor, ...], list[str], dict]:
    """Sample inputs of `ExportGraph(tagger)`, their names, and their dynamic axes (for `torch.onnx.export`)."""
    samples, axes = [], {}
    for name, width in tagger.input_parts():
        if name == "chars":
            samples.append(torch.randint(2, len(tagger.char_net.ids), (batch, steps, 4)))
            axes[name] = {0: "batch", 1: "length", 2: "characters"}
        else:
            samples.append(torch.randn(batch, steps, width))
            axes[name] = {0: "batch", 1: "length"}
    lengths = torch.tensor([steps] + [max(1, steps - 2)] * (batch - 1), dtype=torch.long)
    names = [*(name for name, _ in tagger.input_parts()), "lengths"]
    return (*samples, lengths), names, {**axes, "lengths": {0: "batch"}, "emissions": {0: "batch", 1: "length"}}
