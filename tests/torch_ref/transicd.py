"""PyTorch reference for models/transicd.yaml: TransICD (scaled embeddings
plus a sinusoidal position buffer, a two-layer nn.TransformerEncoder with a
key padding mask, code-wise attention with one learned query per code, a
Linear(d, 1) per code stored as one [codes, d] weight)."""
import math

import torch
import torch.nn as nn

MODEL = "transicd"
VOCAB, D, HEADS, FF, LAYERS, CODES, MAX_T = 1000, 64, 8, 256, 2, 50, 1024
CASES = [(1, 1), (3, 7), (2, 1024)]
TOL = (2e-5, 1e-5)  # the attention family of docs/layers.md
STREAMS = False


class PositionalEncoding(nn.Module):
    """The sinusoids of "Attention Is All You Need" as a buffer (so in the
    state_dict, as in TransICD), [max_len, d] here."""

    def __init__(self):
        super().__init__()
        pos = torch.arange(MAX_T, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, D, 2, dtype=torch.float32) * (-math.log(10000.0) / D))
        pe = torch.zeros(MAX_T, D)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe)

    def forward(self, x):
        return x + self.pe[: x.shape[1]]


class LabelAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(D, D)

    def forward(self, h, queries, valid):
        scores = torch.tanh(self.l1(h)) @ queries.t()  # [B, T, codes]
        scores = scores.masked_fill(~valid[:, :, None], float("-inf"))
        attention = torch.softmax(scores, dim=1)
        return attention.transpose(1, 2) @ h, attention


class TransICD(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        self.pos_encoder = PositionalEncoding()
        layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.label_attn = LabelAttention()
        self.label_queries = nn.Parameter(torch.randn(CODES, D))
        self.out = nn.Linear(D, CODES)  # row c is code c's Linear(d, 1)

    def forward(self, ids, lengths):
        valid = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
        x = self.pos_encoder(self.embed(ids) * math.sqrt(D))
        h = self.encoder(x, src_key_padding_mask=~valid)
        v, attention = self.label_attn(h, self.label_queries, valid)
        logits = (v * self.out.weight).sum(-1) + self.out.bias
        return logits, attention


def reference(seed):
    torch.manual_seed(seed)
    m = TransICD()
    # torch initializes norms to 1/0 and attention biases to 0: draw them
    # too, so a swapped or missing scale or bias shows. Embeddings
    # N(0, 0.125^2): times sqrt(64) they are N(0, 1), like the sinusoids.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name == "embed.weight":
                p.normal_(0.0, 0.125)
            elif "norm" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.uniform_(-0.2, 0.2)
    return m.eval()


def inputs(batch, T, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (batch,), generator=g)
    lengths[0] = T  # one full sequence
    return {"ids": torch.randint(0, VOCAB, (batch, T), generator=g), "lengths": lengths}


def forward(module, inputs):
    # Grad mode keeps PyTorch off its fused inference fast path (which leaves
    # padded positions unspecified): the reference is the plain composition.
    with torch.enable_grad():
        logits, attention = module(inputs["ids"], inputs["lengths"])
    return {"logits": logits.detach(), "attention": attention.detach()}
