"""Reference of models/seq2seq_attention.yaml: Bahdanau, Cho & Bengio 2015
("Neural Machine Translation by Jointly Learning to Align and Translate"),
teacher-forced: an embedding and a bidirectional nn.GRU over the padded
source (pack_padded_sequence), a decoder nn.GRUCell whose state s starts at
tanh(W_init h_back) (the backward direction's final state), additive
attention e_j = v^T tanh(W_a s_{t-1} + U_a h_j) over the valid source
positions, and a linear readout of [s_t; c_t; y_{t-1}] (the paper's maxout
layer simplified to a linear one).

The source length S is chosen from T (S = 5 + T % 7, at most 64 for T = 1024)."""

import torch
import torch.nn as nn

from _util import init_linear, init_recurrent, randint, random_lengths

MODEL = "seq2seq_attention"
SRC_VOCAB, TGT_VOCAB, E, HE, HD, A = 40, 30, 16, 16, 24, 20
CASES = [(1, 1), (3, 7), (2, 20), (2, 1024)]
TOL = (2e-5, 1e-5)  # the recurrent family of docs/layers.md
STREAMS = True  # the decoder: the encoder reads only the source (S), not T


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.src_embed = nn.Embedding(SRC_VOCAB, E)
        self.encoder = nn.GRU(E, HE, bidirectional=True)
        self.init = nn.Linear(HE, HD)
        self.att_W = nn.Linear(HD, A, bias=False)
        self.att_U = nn.Linear(2 * HE, A)
        self.att_v = nn.Linear(A, 1, bias=False)
        self.tgt_embed = nn.Embedding(TGT_VOCAB, E)
        self.decoder = nn.GRUCell(E + 2 * HE, HD)
        self.out = nn.Linear(HD + 2 * HE + E, TGT_VOCAB)


def reference(seed):
    torch.manual_seed(seed)
    m = Seq2Seq()
    init_recurrent(m.encoder)
    init_recurrent(m.decoder)
    for lin in (m.init, m.att_W, m.att_U, m.att_v, m.out):
        init_linear(lin)
    return m


def src_len(T):
    return 64 if T >= 1024 else 5 + T % 7


def inputs(batch, T, seed):
    S = src_len(T)
    lengths = random_lengths(batch, S, seed, full_first=True)
    return {"src": randint(seed + 1, SRC_VOCAB, S, batch), "src_lengths": lengths.to(torch.int64),
            "tgt_in": randint(seed + 2, TGT_VOCAB, T, batch)}


def forward(m, x):
    src, lengths = x["src"], x["src_lengths"]
    S, B = src.shape
    packed = nn.utils.rnn.pack_padded_sequence(m.src_embed(src), lengths, enforce_sorted=False)
    out, hn = m.encoder(packed)
    enc, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=S)       # [S, B, 2HE]
    enc = enc.transpose(0, 1)                                            # [B, S, 2HE]
    keys = m.att_U(enc)                                                  # [B, S, A]
    valid = torch.arange(S)[None, :] < lengths[:, None]                 # [B, S]
    s = torch.tanh(m.init(hn[1]))                                        # backward direction's final state
    logits, attn = [], []
    for y in m.tgt_embed(x["tgt_in"]):                                   # y_{t-1}: [B, E]
        e = m.att_v(torch.tanh(m.att_W(s)[:, None, :] + keys))[..., 0]   # [B, S]
        alpha = torch.softmax(e.masked_fill(~valid, float("-inf")), dim=-1)
        ctx = (alpha[:, :, None] * enc).sum(1)                           # [B, 2HE]
        s = m.decoder(torch.cat([y, ctx], -1), s)
        logits.append(m.out(torch.cat([s, ctx, y], -1)))
        attn.append(alpha)
    return {"logits": torch.stack(logits), "attn": torch.stack(attn)}
