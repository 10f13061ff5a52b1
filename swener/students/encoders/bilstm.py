"""One bidirectional LSTM layer over the word vectors (the paper's BiLSTM; Flair's own RNN layer)."""
from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from swener.students.encoders.base import Encoder, register


@register("bilstm")
class BiLSTM(Encoder):
    """[B, T, D] -> [B, T, 2 x hidden]: forward and backward states of each token (packed, so padding is skipped)."""

    recurrent = True

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.lstm = torch.nn.LSTM(input_size, hidden_size, num_layers=1, bidirectional=True, batch_first=True)
        self.output_size = 2 * hidden_size

    def forward(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(vectors, lengths.cpu(), batch_first=True)
        output, _ = self.lstm(packed)
        return pad_packed_sequence(output, batch_first=True)[0]
