"""Reference of models/elman.yaml (the bundled example, used by README,
examples/ and tests/ir): h_t = tanh(x_t W^T + h_{t-1} U^T + b), computed
by torch.nn.RNN (tanh, one layer) with W, U, b as its weights; the YAML
keeps its short parameter names, so the module holds them as such."""

import math

import torch
import torch.nn as nn

from _util import randn, uniform_

MODEL = "elman"
I, H = 4, 8
CASES = [(1, 1), (2, 5), (3, 33), (1, 1024)]
TOL = (2e-5, 1e-5)  # the recurrent family of docs/layers.md
STREAMS = True


class Elman(nn.Module):
    def __init__(self):
        super().__init__()
        self.W = nn.Parameter(torch.empty(H, I))
        self.U = nn.Parameter(torch.empty(H, H))
        self.b = nn.Parameter(torch.empty(H))


def reference(seed):
    torch.manual_seed(seed)
    m = Elman()
    uniform_(m.W, 2 / math.sqrt(I))  # as parity.init_recurrent: a wide tanh range,
    uniform_(m.U, 1 / math.sqrt(H))  # a contractive recurrence
    uniform_(m.b, 1.0)
    return m


def inputs(batch, T, seed):
    return {"x": randn(seed, T, batch, I), "h0": randn(seed + 1, batch, H)}


def forward(m, x):
    rnn = nn.RNN(I, H, bias=True)  # torch's own cell, with the model's weights
    rnn.weight_ih_l0.data, rnn.weight_hh_l0.data = m.W.data, m.U.data
    rnn.bias_ih_l0.data, rnn.bias_hh_l0.data = m.b.data, torch.zeros(H)
    ys, h = rnn(x["x"], x["h0"][None])
    return {"h": h[0], "ys": ys}
