"""Reference of models/lstm_brnn_features.yaml: an nn.LSTM over each agent's
observation sequence, then a bidirectional nn.RNN (tanh) over the LSTM's
outputs as the feature extractor, and a softmax policy head (nn.Linear) over
the offloading actions at every step."""

import torch
import torch.nn as nn

from _util import init_linear, init_recurrent, randn

MODEL = "lstm_brnn_features"
OBS, H1, H2, ACTIONS = 10, 32, 16, 4
CASES = [(1, 1), (3, 15), (2, 1024)]
TOL = (2e-5, 1e-5)  # the recurrent family of docs/layers.md
STREAMS = False  # the backward RNN reads the future


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(OBS, H1)
        self.brnn = nn.RNN(H1, H2, bidirectional=True)
        self.policy = nn.Linear(2 * H2, ACTIONS)


def reference(seed):
    torch.manual_seed(seed)
    m = Policy()
    init_recurrent(m.lstm)
    init_recurrent(m.brnn)
    init_linear(m.policy)
    return m


def inputs(batch, T, seed):
    return {"obs": randn(seed, T, batch, OBS)}


def forward(m, x):
    h, _ = m.lstm(x["obs"])
    features, _ = m.brnn(h)
    return {"features": features, "probs": torch.softmax(m.policy(features), dim=-1)}
