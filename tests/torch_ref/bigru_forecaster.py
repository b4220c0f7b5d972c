"""Reference of models/bigru_forecaster.yaml: multivariate time-series
forecasting with a bidirectional nn.GRU over the history window whose two
final states feed an nn.Linear head predicting the next HORIZON steps of
every variable."""

import torch
import torch.nn as nn

from _util import init_linear, init_recurrent, randn

MODEL = "bigru_forecaster"
F, H, HORIZON = 5, 16, 3
CASES = [(1, 1), (4, 24), (2, 1023)]
TOL = (2e-5, 1e-5)  # the recurrent family of docs/layers.md
STREAMS = False  # the backward direction reads the whole window


class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(F, H, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * H, HORIZON * F)


def reference(seed):
    torch.manual_seed(seed)
    m = Forecaster()
    init_recurrent(m.gru)
    init_linear(m.head)
    return m


def inputs(batch, T, seed):
    # A few noisy sinusoids per variable, like a sensor history.
    t = torch.arange(T, dtype=torch.float32)[None, :, None]
    freq = torch.rand(batch, 1, F, generator=torch.Generator().manual_seed(seed)) * 0.3
    return {"x": torch.sin(t * freq) + 0.3 * randn(seed + 1, batch, T, F)}


def forward(m, x):
    B = x["x"].shape[0]
    _, hn = m.gru(x["x"])                          # [2, B, H]: forward and backward final states
    return {"forecast": m.head(hn.transpose(0, 1).reshape(B, 2 * H)).reshape(B, HORIZON, F)}
