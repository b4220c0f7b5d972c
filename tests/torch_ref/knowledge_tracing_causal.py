"""Reference of models/knowledge_tracing_causal.yaml, the streaming variant
of knowledge_tracing: after each answer t the model predicts the correctness
of the answer to q_next[t] (the question asked at t + 1) from answers 0..t
only. A unidirectional nn.GRU reads the interactions (q + Q*r); the next
question's projected embedding attends over the GRU states of steps <= t
(causal scaled dot-product attention, keys through a linear projection, as
in SAKT's query-by-next-exercise); a linear layer on [context; h_t;
question] gives the probability. It streams one answer at a time: the GRU
state and the attention's keys and values are the state."""

import math

import torch
import torch.nn as nn

from _util import init_linear, init_recurrent, randint

MODEL = "knowledge_tracing_causal"
Q, E, H = 30, 16, 32
CASES = [(1, 1), (3, 13), (2, 1024)]
TOL = (2e-5, 1e-5)  # the recurrent family of docs/layers.md
STREAMS = True


class CausalKnowledgeTracing(nn.Module):
    def __init__(self):
        super().__init__()
        self.interaction = nn.Embedding(2 * Q, E)
        self.question = nn.Embedding(Q, E)
        self.gru = nn.GRU(E, H, batch_first=True)
        self.query = nn.Linear(E, H)
        self.key = nn.Linear(H, H)
        self.out = nn.Linear(2 * H + E, 1)


def reference(seed):
    torch.manual_seed(seed)
    m = CausalKnowledgeTracing()
    init_recurrent(m.gru)
    for lin in (m.query, m.key, m.out):
        init_linear(lin)
    return m


def inputs(batch, T, seed):
    return {"q": randint(seed + 1, Q, batch, T), "r": randint(seed + 2, 2, batch, T),
            "q_next": randint(seed + 3, Q, batch, T)}


def forward(m, x):
    T = x["q"].shape[1]
    h, _ = m.gru(m.interaction(x["q"] + Q * x["r"]))          # [B, T, H]
    qe = m.question(x["q_next"])                              # [B, T, E]
    scores = m.query(qe) @ m.key(h).transpose(1, 2) / math.sqrt(H)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    attn = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    ctx = attn @ h
    return {"p": torch.sigmoid(m.out(torch.cat([ctx, h, qe], -1)))[..., 0]}
