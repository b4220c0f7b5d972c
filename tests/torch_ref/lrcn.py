"""Reference of models/lrcn.yaml: a Long-term Recurrent Convolutional Network
(Donahue et al. 2015) over 1-D frames: two nn.Conv1d layers (ReLU) applied to
each frame on its own (nn.Conv1d on the frames reshaped to [B*T, C, L]),
mean-pooled over the frame's samples, then an nn.LSTM across frames and an
nn.Linear classifier at every frame."""

import torch
import torch.nn as nn

from _util import init_linear, init_recurrent, randn

MODEL = "lrcn"
C, L, C1, C2, H, CLASSES = 3, 32, 8, 16, 32, 5
CASES = [(1, 1), (3, 7), (2, 1024)]
TOL = (2e-5, 1e-5)  # the recurrent family of docs/layers.md
STREAMS = True  # frames are convolved one by one; the LSTM carries across them


class Lrcn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(C, C1, 5, stride=2, padding=2)
        self.conv2 = nn.Conv1d(C1, C2, 3, padding=1)
        self.lstm = nn.LSTM(C2, H, batch_first=True)
        self.classify = nn.Linear(H, CLASSES)


def reference(seed):
    torch.manual_seed(seed)
    m = Lrcn()
    init_linear(m.conv1)
    init_linear(m.conv2)
    init_recurrent(m.lstm)
    init_linear(m.classify)
    return m


def inputs(batch, T, seed):
    return {"frames": randn(seed, batch, T, C, L)}


def forward(m, x):
    B, T = x["frames"].shape[:2]
    f = torch.relu(m.conv1(x["frames"].reshape(B * T, C, L)))
    f = torch.relu(m.conv2(f)).mean(-1).reshape(B, T, C2)     # one feature vector per frame
    h, _ = m.lstm(f)
    return {"logits": m.classify(h)}
