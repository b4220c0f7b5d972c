"""Reference of models/gru.yaml: a one-layer torch.nn.GRU, batch_first, with
an initial state, followed by a linear readout per step."""

import torch
import torch.nn as nn

from _util import init_linear, init_recurrent, randn

MODEL = "gru"
I, H, O = 12, 24, 6
CASES = [(1, 1), (4, 9), (1, 1024)]
TOL = (2e-5, 1e-5)  # the recurrent family of docs/layers.md
STREAMS = True


class Gru(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(I, H, batch_first=True)
        self.out = nn.Linear(H, O)


def reference(seed):
    torch.manual_seed(seed)
    m = Gru()
    init_recurrent(m.gru)
    init_linear(m.out)
    return m


def inputs(batch, T, seed):
    return {"x": randn(seed, batch, T, I), "h0": randn(seed + 1, 1, batch, H)}


def forward(m, x):
    y, hn = m.gru(x["x"], x["h0"])
    return {"y": m.out(y), "hn": hn}
