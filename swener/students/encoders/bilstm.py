"""One bidirectional LSTM layer over the word vectors (the paper's BiLSTM; Flair's own RNN layer)."""
from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from swener.students.encoders.base import Encoder, register


@register("bilstm")
class BiLSTM(Encoder):
    """[B, T, D] -> [B, T, 2 x hidden]: forward and backward states of each token; padding never read.

    Each direction runs as one unidirectional LSTM over the padded batch, the backward one
    over every sentence reversed within its length, so padding only ever follows a
    sentence's tokens. That is the packed bidirectional LSTM's result (up to float
    rounding) without the per-step slices of packed sequences, whose zero-filled gradients
    cost more than the LSTM's products in training. An int8 model's quantised LSTM (another
    module with its own weight format) runs packed, and so does one with `packed = True`
    (the previous path, which the training benchmark compares in the same process).
    """

    recurrent = True
    packed = False

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.lstm = torch.nn.LSTM(input_size, hidden_size, num_layers=1, bidirectional=True, batch_first=True)
        self.output_size = 2 * hidden_size

    def forward(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.packed or not isinstance(self.lstm, torch.nn.LSTM):
            output, _ = self.lstm(pack_padded_sequence(vectors, lengths.cpu(), batch_first=True))
            return pad_packed_sequence(output, batch_first=True)[0]
        positions = torch.arange(vectors.shape[1], device=vectors.device)[None, :]
        last = lengths.to(vectors.device)[:, None] - 1
        index = torch.where(positions <= last, last - positions, positions).unsqueeze(-1)  # reverses within length
        state = vectors.new_zeros(1, vectors.shape[0], self.hidden_size)
        weights = self.lstm._flat_weights  # forward direction's four tensors, then the reverse one's

        def run(inputs: torch.Tensor, direction: list[torch.Tensor]) -> torch.Tensor:
            return torch.lstm(inputs, (state, state), direction, True, 1, 0.0, self.training, False, True)[0]

        forward = run(vectors, weights[:4])
        backward = run(vectors.gather(1, index.expand_as(vectors)), weights[4:])
        return torch.cat([forward, backward.gather(1, index.expand(-1, -1, self.hidden_size))], dim=2)
