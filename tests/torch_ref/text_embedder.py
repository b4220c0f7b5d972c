"""PyTorch reference for models/text_embedder.yaml: token + learned position
embeddings with LayerNorm, a two-layer post-norm GELU nn.TransformerEncoder
with a key padding mask, masked mean pooling, F.normalize."""
import torch
import torch.nn as nn
import torch.nn.functional as F

MODEL = "text_embedder"
VOCAB, D, HEADS, FF, LAYERS, MAX_T, EPS = 200, 48, 4, 96, 2, 1024, 1e-12
CASES = [(1, 1), (3, 7), (2, 1024)]
TOL = (2e-5, 1e-5)  # the attention family of docs/layers.md
STREAMS = False


class TextEmbedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, D)
        self.pos = nn.Embedding(MAX_T, D)
        self.emb_norm = nn.LayerNorm(D, eps=EPS)
        layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, activation="gelu", layer_norm_eps=EPS,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)

    def forward(self, ids, lengths):
        T = ids.shape[1]
        valid = torch.arange(T)[None, :] < lengths[:, None]  # [B, T]
        x = self.emb_norm(self.tok(ids) + self.pos(torch.arange(T)))
        h = self.encoder(x, src_key_padding_mask=~valid)
        # Masked mean pooling as sentence-transformers writes it.
        w = valid.unsqueeze(-1).float()
        mean = (h * w).sum(1) / w.sum(1).clamp(min=1.0)
        return F.normalize(mean, p=2.0, dim=1, eps=1e-12)


def reference(seed):
    torch.manual_seed(seed)
    m = TextEmbedder()
    # torch initializes norms to 1/0 and attention biases to 0: draw them
    # too, so a swapped or missing scale or bias shows.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name and name.endswith("weight"):
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
        return {"embedding": module(inputs["ids"], inputs["lengths"]).detach()}
