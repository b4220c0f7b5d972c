"""PyTorch reference for models/bert4rec.yaml: BERT4Rec (item + learned
position embeddings with LayerNorm, a two-layer post-norm GELU
nn.TransformerEncoder with a key padding mask, and the output head dense ->
GELU -> LayerNorm -> tied item embedding + per-item bias -> log_softmax)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

MODEL = "bert4rec"
ITEMS = 500
VOCAB = ITEMS + 2  # 0 = padding, 1..500 items, 501 = [mask]
MASK = VOCAB - 1
D, HEADS, FF, LAYERS, MAX_T, EPS = 64, 2, 256, 2, 1024, 1e-12
CASES = [(1, 1), (3, 7), (1, 1024)]
TOL = (2e-5, 1e-5)  # the attention family of docs/layers.md
STREAMS = False


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(D, D)
        self.norm = nn.LayerNorm(D, eps=EPS)

    def forward(self, h):
        return self.norm(F.gelu(self.dense(h)))


class BERT4Rec(nn.Module):
    def __init__(self):
        super().__init__()
        self.item = nn.Embedding(VOCAB, D)
        self.pos = nn.Embedding(MAX_T, D)
        self.emb_norm = nn.LayerNorm(D, eps=EPS)
        layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, activation="gelu", layer_norm_eps=EPS,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.head = Head()
        self.out_bias = nn.Parameter(torch.zeros(VOCAB))

    def forward(self, ids, lengths):
        T = ids.shape[1]
        padding = torch.arange(T)[None, :] >= lengths[:, None]
        x = self.emb_norm(self.item(ids) + self.pos(torch.arange(T)))
        h = self.encoder(x, src_key_padding_mask=padding)
        logits = self.head(h) @ self.item.weight.t() + self.out_bias
        return F.log_softmax(logits, dim=-1)


def reference(seed):
    torch.manual_seed(seed)
    m = BERT4Rec()
    # torch initializes norms to 1/0 and biases to 0: draw them too, so a
    # swapped or missing scale or bias shows. Embeddings N(0, 0.25^2) (not
    # nn.Embedding's N(0, 1)) give item logits of a trained model's spread,
    # a few units, rather than tens.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name in ("item.weight", "pos.weight"):
                p.normal_(0.0, 0.25)
            elif "norm" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.uniform_(-0.2, 0.2)
    return m.eval()


def inputs(batch, T, seed):
    """Item sequences of random lengths (one full), right-padded with item 0,
    each ending in the [mask] item whose next item the model predicts."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (batch,), generator=g)
    lengths[0] = T
    ids = torch.randint(1, ITEMS + 1, (batch, T), generator=g)
    for b in range(batch):
        ids[b, lengths[b] - 1] = MASK
        ids[b, lengths[b]:] = 0
    return {"ids": ids, "lengths": lengths}


def forward(module, inputs):
    # Grad mode keeps PyTorch off its fused inference fast path (which leaves
    # padded positions unspecified): the reference is the plain composition.
    with torch.enable_grad():
        return {"log_probs": module(inputs["ids"], inputs["lengths"]).detach()}
