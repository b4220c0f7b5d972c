"""Reference of models/lstm.yaml: a 2-layer torch.nn.LSTM with initial states."""

import torch
import torch.nn as nn

from _util import init_recurrent, randn

MODEL = "lstm"
I, H, LAYERS = 16, 32, 2
CASES = [(1, 1), (3, 7), (1, 33), (2, 1024)]
TOL = (2e-5, 1e-5)  # the recurrent family of docs/layers.md
STREAMS = True


class Lstm(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(I, H, num_layers=LAYERS)


def reference(seed):
    torch.manual_seed(seed)
    m = Lstm()
    init_recurrent(m.lstm)
    return m


def inputs(batch, T, seed):
    return {"x": randn(seed, T, batch, I), "h0": randn(seed + 1, LAYERS, batch, H),
            "c0": randn(seed + 2, LAYERS, batch, H)}


def forward(m, x):
    y, (hn, cn) = m.lstm(x["x"], (x["h0"], x["c0"]))
    return {"y": y, "hn": hn, "cn": cn}
