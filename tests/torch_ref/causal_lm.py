"""PyTorch reference for models/causal_lm.yaml: a GPT-style decoder (token +
learned position embeddings, pre-norm causal nn.TransformerEncoderLayer
blocks, final LayerNorm, head tied to the token embedding)."""
import torch
import torch.nn as nn

MODEL = "causal_lm"
VOCAB, D, HEADS, FF, LAYERS, MAX_T = 96, 32, 4, 128, 2, 1024
CASES = [(1, 1), (3, 7), (1, 1024)]
TOL = (2e-5, 1e-5)  # the attention family of docs/layers.md
STREAMS = True


class CausalLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, D)
        self.wpe = nn.Embedding(MAX_T, D)
        self.h = nn.ModuleList(
            nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True) for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(D)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(T))
        causal = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
        for block in self.h:
            x = block(x, src_mask=causal)
        return self.ln_f(x) @ self.wte.weight.t()


def reference(seed):
    torch.manual_seed(seed)
    m = CausalLM()
    # torch initializes norms to 1/0 and attention biases to 0: draw them
    # too, so a swapped or missing scale or bias shows. Embeddings N(0,
    # 0.25^2) (not nn.Embedding's N(0, 1)) give logits of a trained model's
    # spread, a few units, rather than tens.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name in ("wte.weight", "wpe.weight"):
                p.normal_(0.0, 0.25)
            elif name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "ln_f.weight":
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.uniform_(-0.2, 0.2)
    return m.eval()


def inputs(batch, T, seed):
    g = torch.Generator().manual_seed(seed)
    return {"ids": torch.randint(0, VOCAB, (batch, T), generator=g)}


def forward(module, inputs):
    # Grad mode keeps PyTorch off its fused inference fast path: the
    # reference is the plain composition of its layers.
    with torch.enable_grad():
        return {"logits": module(inputs["ids"]).detach()}
