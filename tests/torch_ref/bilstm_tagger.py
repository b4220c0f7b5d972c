"""Reference of models/bilstm_tagger.yaml: a sequence tagger (Huang, Xu & Yu
2015 without the CRF): nn.Embedding -> 2-layer bidirectional nn.LSTM over
padded sequences (pack_padded_sequence / pad_packed_sequence) -> nn.Linear
per token."""

import torch
import torch.nn as nn

from _util import init_linear, init_recurrent, randint, random_lengths

MODEL = "bilstm_tagger"
VOCAB, E, H, TAGS = 50, 16, 24, 9
CASES = [(1, 1), (4, 7), (3, 33), (2, 1024)]
TOL = (2e-5, 1e-5)  # the recurrent family of docs/layers.md
STREAMS = False  # the backward direction reads the future


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, E, padding_idx=0)
        self.encoder = nn.LSTM(E, H, num_layers=2, bidirectional=True, batch_first=True)
        self.tags = nn.Linear(2 * H, TAGS)


def reference(seed):
    torch.manual_seed(seed)
    m = Tagger()
    init_recurrent(m.encoder)
    init_linear(m.tags)
    return m


def inputs(batch, T, seed):
    lengths = random_lengths(batch, T, seed, full_first=True)
    ids = randint(seed + 1, VOCAB, batch, T)
    ids[torch.arange(T)[None, :] >= lengths[:, None]] = 0  # padding past each length
    return {"ids": ids, "lengths": lengths.to(torch.int64)}


def forward(m, x):
    T = x["ids"].shape[1]
    packed = nn.utils.rnn.pack_padded_sequence(m.embed(x["ids"]), x["lengths"], batch_first=True,
                                               enforce_sorted=False)
    h, _ = nn.utils.rnn.pad_packed_sequence(m.encoder(packed)[0], batch_first=True, total_length=T)
    return {"logits": m.tags(h)}
