"""Reference of models/knowledge_tracing.yaml: knowledge tracing over a
student's whole answer history (Piech et al. 2015's DKT input encoding, a
bidirectional GRU encoder, and attention from the next question, as in the
attentive BiGRU knowledge-tracing models): each interaction (question q,
response r) is embedded as the id q + Q*r; a bidirectional nn.GRU reads the
padded history (pack_padded_sequence); the embedding of the question to
predict attends over the encoder states of the valid steps (scaled dot
product through a linear projection); a linear layer on [context; question]
gives the probability that the student answers it correctly.

models/knowledge_tracing_causal.yaml (tests/torch_ref/knowledge_tracing_causal.py)
is the streaming variant."""

import math

import torch
import torch.nn as nn

from _util import init_linear, init_recurrent, randint, random_lengths

MODEL = "knowledge_tracing"
Q, E, H = 30, 16, 16
CASES = [(1, 1), (4, 11), (2, 1024)]
TOL = (2e-5, 1e-5)  # the recurrent family of docs/layers.md
STREAMS = False  # the backward direction and the softmax over the history read the whole sequence


class KnowledgeTracing(nn.Module):
    def __init__(self):
        super().__init__()
        self.interaction = nn.Embedding(2 * Q, E)
        self.question = nn.Embedding(Q, E)
        self.encoder = nn.GRU(E, H, bidirectional=True, batch_first=True)
        self.query = nn.Linear(E, 2 * H)
        self.out = nn.Linear(2 * H + E, 1)


def reference(seed):
    torch.manual_seed(seed)
    m = KnowledgeTracing()
    init_recurrent(m.encoder)
    init_linear(m.query)
    init_linear(m.out)
    return m


def inputs(batch, T, seed):
    lengths = random_lengths(batch, T, seed, full_first=True)
    return {"q": randint(seed + 1, Q, batch, T), "r": randint(seed + 2, 2, batch, T),
            "lengths": lengths.to(torch.int64), "q_next": randint(seed + 3, Q, batch)}


def forward(m, x):
    T = x["q"].shape[1]
    lengths = x["lengths"]
    packed = nn.utils.rnn.pack_padded_sequence(m.interaction(x["q"] + Q * x["r"]), lengths, batch_first=True,
                                               enforce_sorted=False)
    h, _ = nn.utils.rnn.pad_packed_sequence(m.encoder(packed)[0], batch_first=True, total_length=T)  # [B, T, 2H]
    qe = m.question(x["q_next"])                                                        # [B, E]
    scores = (h @ m.query(qe)[:, :, None])[..., 0] / math.sqrt(2 * H)                   # [B, T]
    valid = torch.arange(T)[None, :] < lengths[:, None]
    attn = torch.softmax(scores.masked_fill(~valid, float("-inf")), dim=-1)
    ctx = (attn[:, :, None] * h).sum(1)
    return {"p": torch.sigmoid(m.out(torch.cat([ctx, qe], -1)))[:, 0], "attn": attn}
