"""Reference of models/pointer_network.yaml: Pointer Networks (Vinyals,
Fortunato & Jaitly 2015). Input points (2-D) are embedded by a linear layer;
an nn.LSTM encodes the valid ones (pack_padded_sequence) and its final (h, c)
starts a decoder nn.LSTMCell. At decoder step t the input is the embedding
of the point chosen at step t - 1 (prev[t], an input position), or a learned
start vector when prev[t] < 0, and the output is the pointer distribution
  u_j = v^T tanh(W1 e_j + W2 d_t),  p_t = softmax(u) over the candidates j:
the valid positions (j < lengths[b]) not yet pointed at in this tour. As in
the paper's TSP and convex-hull decoders, a point is chosen once per tour;
when every valid point has been chosen, a new tour starts (all valid points
are candidates again), so a decoder of any length T has candidates.

forward is teacher-forced (prev given). Greedy decoding runs through the
.so's step, one step at a time, feeding the argmax of p_t back as prev[t+1]
(feedback/greedy below, driven by tests/torch/zoo.py).

The number of input points S is chosen from T (S = 6 + T % 5)."""

import torch
import torch.nn as nn

from _util import init_linear, init_recurrent, randint, randn, random_lengths, uniform_

MODEL = "pointer_network"
E, H, A = 16, 32, 24
CASES = [(1, 1), (3, 9), (2, 1024)]
TOL = (2e-5, 1e-5)  # the recurrent family of docs/layers.md
STREAMS = True  # the decoder over T; the encoder reads only the points (S)


class PointerNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(2, E)
        self.encoder = nn.LSTM(E, H)
        self.decoder = nn.LSTMCell(E, H)
        self.start = nn.Parameter(torch.empty(E))
        self.W1 = nn.Linear(H, A, bias=False)
        self.W2 = nn.Linear(H, A, bias=False)
        self.v = nn.Linear(A, 1, bias=False)

    def encode(self, x):
        pts, lengths = x["points"], x["lengths"]
        S = pts.shape[0]
        e = self.embed(pts)                                                    # [S, B, E]
        packed = nn.utils.rnn.pack_padded_sequence(e, lengths, enforce_sorted=False)
        out, (hn, cn) = self.encoder(packed)
        enc, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=S)
        valid = torch.arange(S)[None, :] < lengths[:, None]                   # [B, S]
        visited = torch.zeros(valid.shape)
        return e.transpose(0, 1), self.W1(enc.transpose(0, 1)), valid, (hn[0], cn[0], visited)

    def step(self, emb, keys, valid, state, prev):
        """One decoder step: prev [B] -> (p [B, S], new state)."""
        h, c, visited = state
        chosen = emb[torch.arange(emb.shape[0]), prev.clamp(min=0)]           # [B, E]
        xin = torch.where((prev < 0)[:, None], self.start.expand_as(chosen), chosen)
        h, c = self.decoder(xin, (h, c))
        S = valid.shape[1]
        visited = torch.maximum(visited, (torch.arange(S)[None, :] == prev[:, None]).float())
        left = (valid.float() * (1 - visited)).sum(-1, keepdim=True)
        visited = torch.where(left > 0, visited, torch.zeros(()))              # a tour ends: start anew
        u = self.v(torch.tanh(keys + self.W2(h)[:, None, :]))[..., 0]          # [B, S]
        cand = valid & (visited == 0)
        return torch.softmax(u.masked_fill(~cand, float("-inf")), dim=-1), (h, c, visited)


def reference(seed):
    torch.manual_seed(seed)
    m = PointerNetwork()
    init_recurrent(m.encoder)
    init_recurrent(m.decoder)
    for lin in (m.embed, m.W1, m.W2, m.v):
        init_linear(lin)
    uniform_(m.start, 1.0)
    return m


def inputs(batch, T, seed):
    S = 6 + T % 5
    prev = randint(seed + 2, S, T, batch)
    prev[0] = -1  # the first decoder input is the start vector
    lengths = random_lengths(batch, S, seed, full_first=True)
    prev = torch.minimum(prev, lengths[None, :] - 1)  # teacher forcing points at valid positions
    return {"points": randn(seed + 1, S, batch, 2), "lengths": lengths.to(torch.int64), "prev": prev}


def forward(m, x):
    emb, keys, valid, state = m.encode(x)
    ps = []
    for prev in x["prev"]:
        p, state = m.step(emb, keys, valid, state, prev)
        ps.append(p)
    return {"probs": torch.stack(ps)}


def feedback(step_outputs, t):
    """Greedy decoding: the next decoder input is the position just pointed at."""
    return {"prev": step_outputs["probs"].argmax(-1)}  # [1, B, S] -> [1, B]


def greedy(m, x):
    """forward with prev[t + 1] = argmax p_t; returns the probabilities and the fed prev."""
    emb, keys, valid, state = m.encode(x)
    prev, ps, fed = x["prev"][0], [], []
    for _ in range(x["prev"].shape[0]):
        fed.append(prev)
        p, state = m.step(emb, keys, valid, state, prev)
        ps.append(p)
        prev = p.argmax(-1)
    return {"probs": torch.stack(ps), "prev": torch.stack(fed)}
