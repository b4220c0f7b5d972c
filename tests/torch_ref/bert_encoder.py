"""PyTorch reference for models/bert_encoder.yaml: BERT's embeddings (word +
token type + learned position, LayerNorm), a two-layer post-norm GELU
nn.TransformerEncoder with a key padding mask, and BERT's tanh pooler over
the first token."""
import torch
import torch.nn as nn

MODEL = "bert_encoder"
VOCAB, TYPES, D, HEADS, FF, LAYERS, MAX_T, EPS = 128, 2, 64, 2, 256, 2, 1024, 1e-12
CASES = [(1, 1), (3, 7), (2, 1024)]
TOL = (2e-5, 1e-5)  # the attention family of docs/layers.md
STREAMS = False


class Embeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, D)
        self.position_embeddings = nn.Embedding(MAX_T, D)
        self.token_type_embeddings = nn.Embedding(TYPES, D)
        self.LayerNorm = nn.LayerNorm(D, eps=EPS)

    def forward(self, ids, token_type_ids):
        e = self.word_embeddings(ids) + self.token_type_embeddings(token_type_ids)
        e = e + self.position_embeddings(torch.arange(ids.shape[1]))
        return self.LayerNorm(e)


class Pooler(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(D, D)

    def forward(self, hidden):
        return torch.tanh(self.dense(hidden[:, 0]))


class BertEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = Embeddings()
        layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, activation="gelu", layer_norm_eps=EPS,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.pooler = Pooler()

    def forward(self, ids, token_type_ids, lengths):
        padding = torch.arange(ids.shape[1])[None, :] >= lengths[:, None]
        hidden = self.encoder(self.embeddings(ids, token_type_ids), src_key_padding_mask=padding)
        return hidden, self.pooler(hidden)


def reference(seed):
    torch.manual_seed(seed)
    m = BertEncoder()
    # torch initializes norms to 1/0 and attention biases to 0: draw them
    # too, so a swapped or missing scale or bias shows.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name.lower() and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.uniform_(-0.2, 0.2)
    return m.eval()


def inputs(batch, T, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (batch,), generator=g)
    lengths[0] = T  # one full sequence
    return {"ids": torch.randint(0, VOCAB, (batch, T), generator=g),
            "token_type_ids": torch.randint(0, TYPES, (batch, T), generator=g),
            "lengths": lengths}


def forward(module, inputs):
    # Grad mode keeps PyTorch off its fused inference fast path (which leaves
    # padded positions unspecified): the reference is the plain composition.
    with torch.enable_grad():
        hidden, pooled = module(inputs["ids"], inputs["token_type_ids"], inputs["lengths"])
    return {"hidden": hidden.detach(), "pooled": pooled.detach()}
