"""PyTorch reference for models/encoder_decoder.yaml: a BART-style
encoder-decoder (shared token embedding, learned positions and an embedding
LayerNorm on each side, post-norm GELU nn.TransformerEncoderLayer and
nn.TransformerDecoderLayer stacks, a head tied to the shared embedding plus
final_logits_bias).

The source length S is not a case parameter: inputs() derives it from T
(S = min(T, 40) + 5), so the cross-attention is rectangular in every case,
and short enough that the streaming check (which recomputes the encoder on
every step call) stays fast at T = 1024."""
import torch
import torch.nn as nn

MODEL = "encoder_decoder"
VOCAB, D, HEADS, FF, LAYERS, MAX_T = 128, 32, 4, 64, 2, 1024
CASES = [(1, 1), (3, 7), (1, 1024)]
TOL = (2e-5, 1e-5)  # the attention family of docs/layers.md
STREAMS = True  # on the decoder: src and src_lengths are read by every step call


def source_length(T):
    return min(T, 40) + 5


class Stack(nn.Module):
    """One side: learned positions, the embedding LayerNorm, the layers."""

    def __init__(self, layer):
        super().__init__()
        self.embed_positions = nn.Embedding(MAX_T, D)
        self.layernorm_embedding = nn.LayerNorm(D)
        self.layers = nn.ModuleList(layer() for _ in range(LAYERS))

    def embed(self, tokens):
        return self.layernorm_embedding(tokens + self.embed_positions(torch.arange(tokens.shape[1])))


class EncoderDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        opts = dict(d_model=D, nhead=HEADS, dim_feedforward=FF, dropout=0.0, activation="gelu", batch_first=True)
        self.shared = nn.Embedding(VOCAB, D)
        self.encoder = Stack(lambda: nn.TransformerEncoderLayer(**opts))
        self.decoder = Stack(lambda: nn.TransformerDecoderLayer(**opts))
        self.final_logits_bias = nn.Parameter(torch.zeros(VOCAB))

    def forward(self, src, src_lengths, tgt):
        src_padding = torch.arange(src.shape[1])[None, :] >= src_lengths[:, None]
        memory = self.encoder.embed(self.shared(src))
        for layer in self.encoder.layers:
            memory = layer(memory, src_key_padding_mask=src_padding)
        T = tgt.shape[1]
        causal = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
        y = self.decoder.embed(self.shared(tgt))
        for layer in self.decoder.layers:
            y = layer(y, memory, tgt_mask=causal, memory_key_padding_mask=src_padding)
        return y @ self.shared.weight.t() + self.final_logits_bias


def reference(seed):
    torch.manual_seed(seed)
    m = EncoderDecoder()
    # torch initializes norms to 1/0 and biases to 0: draw them too, so a
    # swapped or missing scale or bias shows. Embeddings N(0, 0.25^2) (not
    # nn.Embedding's N(0, 1)) give logits of a trained model's spread.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name == "shared.weight" or name.endswith("embed_positions.weight"):
                p.normal_(0.0, 0.25)
            elif ("norm" in name) and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.uniform_(-0.2, 0.2)
    return m.eval()


def inputs(batch, T, seed):
    g = torch.Generator().manual_seed(seed)
    S = source_length(T)
    src_lengths = torch.randint(1, S + 1, (batch,), generator=g)
    src_lengths[0] = S  # one full source
    return {"src": torch.randint(0, VOCAB, (batch, S), generator=g), "src_lengths": src_lengths,
            "tgt": torch.randint(0, VOCAB, (batch, T), generator=g)}


def forward(module, inputs):
    # Grad mode keeps PyTorch off its fused inference fast path (which leaves
    # padded positions unspecified): the reference is the plain composition.
    with torch.enable_grad():
        return {"logits": module(inputs["src"], inputs["src_lengths"], inputs["tgt"]).detach()}
