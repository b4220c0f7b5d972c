#!/usr/bin/python3
"""Numeric parity of seqc's PyTorch-compatible layers against PyTorch 1.13.

Run with Debian's python3-torch, which imports only from /usr/bin/python3:

    /usr/bin/python3 tests/torch/parity.py --seqc build/seqc --work /tmp/parity
    /usr/bin/python3 tests/torch/parity.py -k gru -v          # a subset, with details
    /usr/bin/python3 tests/torch/parity.py --self-test        # the harness on primitive ops

For every case of the table below the harness builds the torch module with a
fixed seed and random weights, runs it on random inputs, and writes

  CASE/NAME.yaml          the model in seqc's YAML, using the layer block node
  CASE/weights.safetensors the module's state_dict, written by hand (Debian 12
                          has no safetensors package; docs/weights.md)
  CASE/INPUT.bin          each input, raw little-endian (docs/cli.md, seqc run)

then runs the model twice: in process (`seqc run`, JIT) and as a shared
object (`seqc build` + tests/torch/run_so.c, which dlopens it and drives it
through its descriptor). Both results are compared elementwise with torch's
float32 output:

    |got - expected| <= atol + rtol * |expected|      (numpy's isclose)

with the tolerances of the layer's family (TOLERANCES). Each case prints one
line, `ok   NAME: OUTPUT abs A rel R, ... [jit]; .so: same|abs ...` or
`FAIL NAME: reason`; the last line is `torch parity: N passed, M failed`, and
the exit status is 0 only when every case passed.

Negative checks prove the recurrent tolerance discriminates: a GRU with the
reset gate applied before the hidden matmul (ONNX linear_before_reset=0) and
an LSTM with ONNX's gate order (i, o, f, c) are computed by hand in torch and
must be rejected by the same comparison; the correct variants, computed by the
same hand-written code, must be accepted.
"""

import argparse
import concurrent.futures
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools"))
import export_torch  # noqa: E402  (its safetensors writer: one implementation)

# Tolerances per layer family: (atol, rtol) in |got - exp| <= atol + rtol*|exp|.
# The largest errors measured (x86-64, -O2, JIT and .so alike) are in the
# comments; every bound is at least 20x above them, and far below the errors
# of a wrong equation (0.3 to 1.6 for a misplaced GRU reset or LSTM gate order).
TOLERANCES = {
    # Copies (embedding's gather, dropout's identity) must be bitwise exact.
    "exact": (0.0, 0.0),
    # One dot product per element, K = 12: measured 2.4e-7.
    "linear": (1e-5, 1.3e-6),
    # Mean, variance, rsqrt over D = 32, values around 2 +- 3: measured 7.2e-7.
    "norm": (1e-5, 1.3e-6),
    # Recurrences, T up to 1024: each step's rounding differences are carried
    # on, but the recurrences here are contractive (init_recurrent), so they
    # stay bounded: measured 5.4e-7 (T = 7), 4.2e-7 (T = 1024).
    "recurrent": (2e-5, 1e-5),
    # Attention (projections, softmax over T keys, out_proj) and whole
    # encoder layers (two layernorms, a feed-forward block): measured 1.7e-6.
    "attention": (2e-5, 1e-5),
}

# Relative errors are reported over elements with |expected| >= REL_FLOOR;
# smaller ones are judged by atol alone (their relative error is noise).
REL_FLOOR = 1e-3

# ---------------------------------------------------------------------------
# Files: safetensors, raw tensors, YAML


def torch_dtype_name(t):
    """(safetensors dtype, seqc dtype) of a tensor."""
    return {torch.float32: ("F32", "f32"), torch.int64: ("I64", "i64"), torch.int32: ("I32", "i32")}[t.dtype]


def read_raw(path, like):
    """The raw little-endian file at path as a tensor shaped and typed like `like`."""
    with open(path, "rb") as f:
        data = f.read()
    want = like.numel() * like.element_size()
    if len(data) != want:
        raise ValueError("%d bytes, expected %d for %s%s" % (len(data), want, torch_dtype_name(like)[1],
                                                              list(like.shape)))
    return torch.frombuffer(bytearray(data), dtype=like.dtype).reshape(like.shape).clone()


def yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(yaml_value(x) for x in v) + "]"
    return str(v)


def yaml_node(kind, fields):
    """One block node: `- kind:` and its fields, in the order given."""
    lines = ["  - %s:" % kind]
    lines += ["      %s: %s" % (k, yaml_value(v)) for k, v in fields.items()]
    return "\n".join(lines)


def yaml_model(inputs, graph, outputs, params=None):
    """A model file without its `model:` line (Case adds it). inputs/params:
    [(name, type)], graph: node texts or op lines, outputs: [(output_name,
    value_name)]."""
    out = ["inputs:"]
    out += ["  %s: %s" % (n, t) for n, t in inputs] or ["  {}"]
    if params:
        out += ["params:"] + ["  %s: %s" % (n, t) for n, t in params]
    out.append("graph:")
    out += [g if g.startswith("  - ") else "  - " + g for g in graph]
    out.append("outputs:")
    out += ["  %s: %s" % (o, v) for o, v in outputs]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Cases


class Case:
    """One parity test: a model, its weights and inputs, torch's outputs."""

    def __init__(self, name, family, yaml, weights, inputs, expected, dims, expect_fail=False,
                 expect_error=None):
        self.name = name            # printed, with the dims
        self.family = family        # key of TOLERANCES
        # The name with its dims names the directory under --work and the
        # model (so the .so is ID.so and exports ID_descriptor).
        self.id = c_name(name + "".join("_%s%d" % kv for kv in sorted(dims.items())))
        self.yaml = "model: %s\n%s" % (self.id, yaml)
        self.weights = weights      # {state_dict key: f32 tensor}
        self.inputs = inputs        # [(input name, tensor)] in signature order
        self.expected = expected    # [(output name, tensor)]
        self.dims = dims            # {symbol: value} for --dim and run_so
        self.expect_fail = expect_fail  # self-test: the comparison must reject it
        # Bad weights: opening them must fail (JIT and .so) with a message
        # containing each of these strings.
        self.expect_error = expect_error
        self.skip = {}  # output name: bool mask of elements not compared

    def label(self):
        order = sorted(self.dims, key=lambda s: (s != "T", s))  # T first
        extra = " ".join("%s=%d" % (s, self.dims[s]) for s in order)
        return self.name + (" " + extra if extra else "")


def prefixed(state_dict, prefix):
    """The state_dict of a module holding this one at `prefix` (a layer reads
    PREFIX.weight ...; the prefix is its `params:`, or else its name)."""
    return {"%s.%s" % (prefix, k): v for k, v in state_dict.items()}


def c_name(case_name):
    """A C identifier for a case: the model's name."""
    return re.sub(r"[^A-Za-z0-9_]", "_", case_name)


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def uniform_(t, a):
    with torch.no_grad():
        t.uniform_(-a, a)


def init_recurrent(mod):
    """Weights that exercise every gate over most of its range.

    Input weights are scaled up (2/sqrt(fan_in), inputs ~ N(0, 1)) and biases
    drawn from U(-1, 1), so gate pre-activations spread over several units and
    sigmoid(r) covers about (0.01, 0.99) (negative_checks asserts it spans
    (0.1, 0.9) at least); a GRU's b_hn is then clearly nonzero. The
    recurrent weights keep PyTorch's default U(-1/sqrt(H), 1/sqrt(H)), whose
    spectral radius (~0.6) keeps the recurrence contractive, so rounding
    differences do not grow over 1024 steps."""
    for name, p in mod.named_parameters():
        if name.startswith("weight_ih"):
            uniform_(p, 2.0 / math.sqrt(p.shape[1]))
        elif name.startswith("bias"):
            uniform_(p, 1.0)
        else:  # weight_hh, weight_hr: the default init
            uniform_(p, 1.0 / math.sqrt(mod.hidden_size))


def rnn_case(kind, T, B, I=8, H=16, layers=1, bi=False, bf=False, bias=True, proj=0,
             nonlinearity="tanh", h0=False, seed=0, name=None):
    """rnn/lstm/gru named enc; its parameters are enc.weight_ih_l0 ...
    The case's name says which options it sets, unless given."""
    torch.manual_seed(seed)
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    kw = dict(num_layers=layers, bias=bias, batch_first=bf, bidirectional=bi)
    if kind == "lstm":
        kw["proj_size"] = proj
    if kind == "rnn":
        kw["nonlinearity"] = nonlinearity
    mod = cls(I, H, **kw)
    init_recurrent(mod)
    mod.eval()
    D, Hout = 2 if bi else 1, proj or H
    x = randn(B, T, I) if bf else randn(T, B, I)
    xtype = "f32[B, T, %d]" % I if bf else "f32[T, B, %d]" % I
    inputs, types = [("x", x)], [("x", xtype)]
    state = None
    if h0:
        hs = randn(D * layers, B, Hout)
        inputs.append(("h0", hs))
        types.append(("h0", "f32[%d, B, %d]" % (D * layers, Hout)))
        state = hs
        if kind == "lstm":
            cs = randn(D * layers, B, H)
            inputs.append(("c0", cs))
            types.append(("c0", "f32[%d, B, %d]" % (D * layers, H)))
            state = (hs, cs)
    with torch.no_grad():
        y, hn = mod(x, state)
    expected = [("y", y)]
    if kind == "lstm":
        expected += [("hn", hn[0]), ("cn", hn[1])]
    else:
        expected.append(("hn", hn))
    weights = prefixed(mod.state_dict(), "enc")
    fields = {"name": "enc", "input": "x", "hidden_size": H}
    if layers != 1:
        fields["num_layers"] = layers
    if bi:
        fields["bidirectional"] = True
    if bf:
        fields["batch_first"] = True
    if not bias:
        fields["bias"] = False
    if proj:
        fields["proj_size"] = proj
    if kind == "rnn" and nonlinearity != "tanh":
        fields["nonlinearity"] = nonlinearity
    if h0:
        fields["h0"] = "h0"
        if kind == "lstm":
            fields["c0"] = "c0"
    fields["out"] = [n for n, _ in expected]
    name = name or "%s-%dl%s%s%s%s%s%s" % (
        kind, layers, "-bi" if bi else "", "-bf" if bf else "", "" if bias else "-nobias",
        "-proj%d" % proj if proj else "", "-relu" if nonlinearity == "relu" else "", "-h0" if h0 else "")
    text = yaml_model(types, [yaml_node(kind, fields)], [(n, n) for n, _ in expected])
    return Case(name, "recurrent", text, weights, inputs, expected, {"T": T, "B": B})


def linear_case(bias, B=3, T=7, I=12, O=5, params=None, seed=0):
    torch.manual_seed(seed)
    mod = nn.Linear(I, O, bias=bias).eval()
    x = randn(B, T, I)
    with torch.no_grad():
        y = mod(x)
    weights = prefixed(mod.state_dict(), params or "fc")
    fields = {"name": "fc"}
    if params:
        fields["params"] = params
    fields.update(input="x", out_features=O)
    if not bias:
        fields["bias"] = False
    fields["out"] = ["y"]
    name = "linear" + ("" if bias else "-nobias") + ("-params" if params else "")
    text = yaml_model([("x", "f32[B, T, %d]" % I)], [yaml_node("linear", fields)], [("y", "y")])
    return Case(name, "linear", text, weights, [("x", x)], [("y", y)], {"T": T, "B": B})


def embedding_ids(T, B, num, padding_idx, dtype, seed):
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, num, (T, B), generator=g)
    if padding_idx is not None:  # make sure the padding row is looked up
        ids[0, 0] = padding_idx
    return ids.to(dtype)


def embedding_case(dtype, padding_idx, T=7, B=3, num=10, dim=6, pad_row_nonzero=False, seed=0):
    """PyTorch's forward returns weight[padding_idx] like any other row
    (padding_idx only affects the gradient); nn.Embedding initializes that row
    to zero, and pad_row_nonzero checks a checkpoint where it is not."""
    torch.manual_seed(seed)
    mod = nn.Embedding(num, dim, padding_idx=padding_idx).eval()
    if pad_row_nonzero:
        with torch.no_grad():
            mod.weight[padding_idx].fill_(0.5)
    ids = embedding_ids(T, B, num, padding_idx, dtype, seed)
    with torch.no_grad():
        e = mod(ids)
    fields = {"name": "emb", "input": "ids", "num_embeddings": num, "embedding_dim": dim}
    if padding_idx is not None:
        fields["padding_idx"] = padding_idx
    fields["out"] = ["e"]
    name = "embedding-%s%s%s" % ("i64" if dtype == torch.int64 else "i32",
                                 "-pad%d" % padding_idx if padding_idx is not None else "",
                                 "-padrow" if pad_row_nonzero else "")
    itype = "i64" if dtype == torch.int64 else "i32"
    text = yaml_model([("ids", "%s[T, B]" % itype)], [yaml_node("embedding", fields)], [("e", "e")])
    weights = prefixed(mod.state_dict(), "emb")
    return Case(name, "exact", text, weights, [("ids", ids)], [("e", e)], {"T": T, "B": B})


def layernorm_case(affine, B=3, T=7, D=32, eps=1e-5, seed=0):
    torch.manual_seed(seed)
    mod = nn.LayerNorm(D, eps=eps, elementwise_affine=affine).eval()
    if affine:  # the defaults (ones, zeros) would hide a misused weight or bias
        with torch.no_grad():
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-1, 1)
    x = randn(B, T, D) * 3 + 2  # an offset mean and a non-unit variance
    with torch.no_grad():
        y = mod(x)
    fields = {"name": "ln", "input": "x", "eps": eps}
    if not affine:
        fields["elementwise_affine"] = False
    fields["out"] = ["y"]
    name = "layernorm" + ("" if affine else "-noaffine")
    text = yaml_model([("x", "f32[B, T, %d]" % D)], [yaml_node("layernorm", fields)], [("y", "y")])
    return Case(name, "norm", text, prefixed(mod.state_dict(), "ln"), [("x", x)], [("y", y)], {"T": T, "B": B})


def rmsnorm_ref(x, weight, eps):
    """RMSNorm as later PyTorch versions define it (1.13 has none)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rmsnorm_case(B=3, T=7, D=32, eps=1e-6, seed=0):
    torch.manual_seed(seed)
    w = torch.empty(D).uniform_(0.5, 1.5)
    x = randn(B, T, D) * 3 + 1
    y = rmsnorm_ref(x, w, eps)
    fields = {"name": "rms", "input": "x", "eps": eps, "out": ["y"]}
    text = yaml_model([("x", "f32[B, T, %d]" % D)], [yaml_node("rmsnorm", fields)], [("y", "y")])
    return Case("rmsnorm", "norm", text, {"rms.weight": w}, [("x", x)], [("y", y)], {"T": T, "B": B})


def dropout_case(B=3, T=7, D=8, seed=0):
    torch.manual_seed(seed)
    mod = nn.Dropout(0.1).eval()
    x = randn(B, T, D)
    y = mod(x)
    text = yaml_model([("x", "f32[B, T, %d]" % D)],
                      [yaml_node("dropout", {"input": "x", "p": 0.1, "out": ["y"]})], [("y", "y")])
    return Case("dropout", "exact", text, {}, [("x", x)], [("y", y)], {"T": T, "B": B})


class Tagger(nn.Module):
    """embedding -> 2-layer bidirectional LSTM -> dropout + linear, with the
    nested state_dict names a real model has (embed.weight,
    encoder.rnn.weight_ih_l0, head.1.weight)."""

    def __init__(self, vocab=20, dim=8, hidden=12, classes=5):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.encoder = nn.Module()
        self.encoder.rnn = nn.LSTM(dim, hidden, num_layers=2, bidirectional=True)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(2 * hidden, classes))

    def forward(self, ids):
        y, _ = self.encoder.rnn(self.embed(ids))
        return self.head(y)


def composition_case(T, B, seed=0):
    torch.manual_seed(seed)
    mod = Tagger()
    init_recurrent(mod.encoder.rnn)
    mod.eval()
    ids = embedding_ids(T, B, 20, 0, torch.int64, seed)
    with torch.no_grad():
        logits = mod(ids)
    graph = [
        yaml_node("embedding", {"name": "emb", "params": "embed", "input": "ids", "num_embeddings": 20,
                                "embedding_dim": 8, "padding_idx": 0, "out": ["e"]}),
        yaml_node("lstm", {"name": "enc", "params": "encoder.rnn", "input": "e", "hidden_size": 12,
                           "num_layers": 2, "bidirectional": True, "out": ["h", "hn", "cn"]}),
        yaml_node("dropout", {"input": "h", "p": 0.2, "out": ["hd"]}),
        yaml_node("linear", {"name": "fc", "params": "head.1", "input": "hd", "out_features": 5,
                             "out": ["logits"]}),
    ]
    name = "embedding-lstm-linear"
    text = yaml_model([("ids", "i64[T, B]")], graph, [("logits", "logits")])
    return Case(name, "recurrent", text, mod.state_dict(), [("ids", ids)], [("logits", logits)], {"T": T, "B": B})


def bad_weights_case():
    """A wrong state_dict for an LSTM: W_hh transposed and b_hh missing. Both
    must be reported at open, naming the tensors and the two shapes."""
    case = rnn_case("lstm", 7, 3, name="lstm-bad-weights")
    case.weights["enc.weight_hh_l0"] = case.weights["enc.weight_hh_l0"].t().contiguous()
    del case.weights["enc.bias_hh_l0"]
    case.expect_error = ["enc.weight_hh_l0", "[64, 16]", "[16, 64]", "enc.bias_hh_l0"]
    return case


def lengths_case(kind, T, B, layers=1, bi=False, bf=False, seed=0):
    """A recurrent layer on padded sequences: torch through
    pack_padded_sequence/pad_packed_sequence, seqc with `lengths`."""
    torch.manual_seed(seed)
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    I, H = 8, 16
    mod = cls(I, H, num_layers=layers, batch_first=bf, bidirectional=bi)
    init_recurrent(mod)
    mod.eval()
    x = randn(B, T, I) if bf else randn(T, B, I)
    lens = random_lengths(B, T, seed + 7, full_first=True)
    with torch.no_grad():
        packed = nn.utils.rnn.pack_padded_sequence(x, lens, batch_first=bf, enforce_sorted=False)
        out, hn = mod(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=bf, total_length=T)
    expected = [("y", y)] + ([("hn", hn[0]), ("cn", hn[1])] if kind == "lstm" else [("hn", hn)])
    fields = {"name": "enc", "input": "x", "lengths": "lens", "hidden_size": H}
    if layers != 1:
        fields["num_layers"] = layers
    if bi:
        fields["bidirectional"] = True
    if bf:
        fields["batch_first"] = True
    fields["out"] = [n for n, _ in expected]
    xtype = "f32[B, T, %d]" % I if bf else "f32[T, B, %d]" % I
    text = yaml_model([("x", xtype), ("lens", "i64[B]")], [yaml_node(kind, fields)],
                      [(n, n) for n, _ in expected])
    name = "%s-%dl%s%s-lengths" % (kind, layers, "-bi" if bi else "", "-bf" if bf else "")
    return Case(name, "recurrent", text, prefixed(mod.state_dict(), "enc"),
                [("x", x), ("lens", lens.to(torch.int64))], expected, {"T": T, "B": B})


def random_lengths(B, T, seed, full_first=False):
    """Lengths in [1, T] (the first T when full_first: pad_packed_sequence
    pads to the longest)."""
    lens = torch.randint(1, T + 1, (B,), generator=torch.Generator().manual_seed(seed))
    if full_first:
        lens[0] = T
    return lens


def add_lengths(inputs, types, fields, key, name, lens):
    """A lengths input `name` (i64[B]) given to the layer's field `key`."""
    inputs.append((name, lens))
    types.append((name, "i64[B]"))
    fields[key] = name


def key_padding(lens, T):
    """PyTorch's key_padding_mask: True where the key is padding."""
    return torch.arange(T)[None, :] >= lens[:, None]


def attention_case(T, B, E=16, heads=4, bf=False, causal=False, lengths=False, kv=False, window=0, seed=0):
    """nn.MultiheadAttention named att (self-attention, or with a key and
    value of other widths: separate q/k/v weights)."""
    torch.manual_seed(seed)
    kdim, vdim = (12, 10) if kv else (E, E)
    mod = nn.MultiheadAttention(E, heads, batch_first=bf, kdim=kdim, vdim=vdim).eval()
    for p in mod.parameters():
        uniform_(p, 0.5)
    seq = (lambda d: randn(B, T, d)) if bf else (lambda d: randn(T, B, d))
    typ = (lambda d: "f32[B, T, %d]" % d) if bf else (lambda d: "f32[T, B, %d]" % d)
    x = seq(E)
    inputs, types = [("x", x)], [("x", typ(E))]
    k = v = x
    fields = {"name": "att", "input": "x", "num_heads": heads}
    if kv:
        k, v = seq(kdim), seq(vdim)
        inputs += [("k", k), ("v", v)]
        types += [("k", typ(kdim)), ("v", typ(vdim))]
        fields.update(key="k", value="v")
    if bf:
        fields["batch_first"] = True
    mask = kpm = None
    if causal:
        fields["mask"] = "causal"
        mask = torch.triu(torch.full((T, T), float("-inf")), 1)
    if window:  # the `window` most recent keys: j <= i and i - j < window
        fields["mask"] = "window"
        fields["window"] = window
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        mask = torch.where((j > i) | (i - j >= window), torch.tensor(float("-inf")), torch.tensor(0.0))
    if lengths:
        lens = random_lengths(B, T, seed + 3)
        add_lengths(inputs, types, fields, "lengths", "lens", lens)
        kpm = key_padding(lens, T)
    fields["out"] = ["y"]
    with torch.no_grad():
        y = mod(x, k, v, key_padding_mask=kpm, attn_mask=mask, need_weights=False)[0]
    name = "mha%s%s%s%s%s" % ("-bf" if bf else "", "-causal" if causal else "", "-lengths" if lengths else "",
                              "-kv" if kv else "", "-window%d" % window if window else "")
    text = yaml_model(types, [yaml_node("multihead_attention", fields)], [("y", "y")])
    return Case(name, "attention", text, prefixed(mod.state_dict(), "att"), inputs, [("y", y)],
                {"T": T, "B": B})


def randomize_transformer(mod):
    """Weights U(-0.5, 0.5), norm scales U(0.5, 1.5): every sublayer matters."""
    with torch.no_grad():
        for n, p in mod.named_parameters():
            p.uniform_(0.5, 1.5) if n.startswith("norm") and n.endswith("weight") else p.uniform_(-0.5, 0.5)


def encoder_case(T, B, norm_first=False, activation="relu", bf=False, lengths=False, seed=0):
    """nn.TransformerEncoderLayer named enc, dropout 0."""
    torch.manual_seed(seed)
    E, heads, ff = 16, 4, 32
    mod = nn.TransformerEncoderLayer(E, heads, ff, dropout=0.0, activation=activation, batch_first=bf,
                                     norm_first=norm_first).eval()
    randomize_transformer(mod)
    x = randn(B, T, E) if bf else randn(T, B, E)
    inputs, types = [("x", x)], [("x", "f32[B, T, %d]" % E if bf else "f32[T, B, %d]" % E)]
    fields = {"name": "enc", "input": "x", "nhead": heads, "dim_feedforward": ff, "activation": activation}
    kpm = None
    if bf:
        fields["batch_first"] = True
    if norm_first:
        fields["norm_first"] = True
    if lengths:
        lens = random_lengths(B, T, seed + 5, full_first=True)
        add_lengths(inputs, types, fields, "lengths", "lens", lens)
        kpm = key_padding(lens, T)
    fields["out"] = ["y"]
    with torch.no_grad():
        y = mod(x, src_key_padding_mask=kpm)
    name = "encoder%s-%s%s%s" % ("-normfirst" if norm_first else "", activation, "-bf" if bf else "",
                                 "-lengths" if lengths else "")
    text = yaml_model(types, [yaml_node("transformer_encoder_layer", fields)], [("y", "y")])
    case = Case(name, "attention", text, prefixed(mod.state_dict(), "enc"), inputs, [("y", y)],
                {"T": T, "B": B})
    if lengths:  # PyTorch's fast path may give anything at padded positions
        padded = kpm if bf else kpm.t()
        case.skip["y"] = padded[..., None].expand(y.shape)
    return case


def decoder_case(T, S, B, norm_first=False, activation="relu", bf=False, causal=True, lengths=False, seed=0):
    """nn.TransformerDecoderLayer named dec over a memory of S steps."""
    torch.manual_seed(seed)
    E, heads, ff = 16, 4, 32
    mod = nn.TransformerDecoderLayer(E, heads, ff, dropout=0.0, activation=activation, batch_first=bf,
                                     norm_first=norm_first).eval()
    randomize_transformer(mod)
    x = randn(B, T, E) if bf else randn(T, B, E)
    mem = randn(B, S, E) if bf else randn(S, B, E)
    typ = (lambda n: "f32[B, %s, %d]" % (n, E)) if bf else (lambda n: "f32[%s, B, %d]" % (n, E))
    inputs, types = [("x", x), ("mem", mem)], [("x", typ("T")), ("mem", typ("S"))]
    fields = {"name": "dec", "input": "x", "memory": "mem", "nhead": heads, "dim_feedforward": ff,
              "activation": activation}
    if bf:
        fields["batch_first"] = True
    if norm_first:
        fields["norm_first"] = True
    mask = mkpm = None
    if causal:
        fields["mask"] = "causal"
        mask = torch.triu(torch.full((T, T), float("-inf")), 1)
    if lengths:
        ml = random_lengths(B, S, seed + 9)
        add_lengths(inputs, types, fields, "memory_lengths", "mlens", ml)
        mkpm = key_padding(ml, S)
    fields["out"] = ["y"]
    with torch.no_grad():
        y = mod(x, mem, tgt_mask=mask, memory_key_padding_mask=mkpm)
    name = "decoder%s-%s%s%s%s" % ("-normfirst" if norm_first else "", activation, "-bf" if bf else "",
                                   "-causal" if causal else "", "-memlengths" if lengths else "")
    text = yaml_model(types, [yaml_node("transformer_decoder_layer", fields)], [("y", "y")])
    return Case(name, "attention", text, prefixed(mod.state_dict(), "dec"), inputs, [("y", y)],
                {"T": T, "S": S, "B": B})


def pool_case(mode, lengths, bf=False, T=6, B=4, E=5, seed=0):
    """Pooling over time, against torch written by hand (torch.nn has no
    masked pooling): mean, max, first, last over each sequence's valid steps."""
    torch.manual_seed(seed)
    x = randn(T, B, E)
    lens = torch.tensor(([T, 3, 0, 1] + [T] * B)[:B], dtype=torch.int64)
    if not lengths:
        lens = torch.full((B,), T, dtype=torch.int64)
    valid = (torch.arange(T)[:, None] < lens[None, :])[..., None]
    some = (lens > 0)[:, None]
    zero = torch.zeros(())
    y = {"mean": (x * valid).sum(0) / lens.clamp(min=1)[:, None].float() if lengths else x.mean(0),
         "max": torch.where(some, torch.where(valid, x, torch.tensor(float("-inf"))).max(0).values, zero),
         "first": torch.where(some, x[0], zero),
         "last": torch.stack([x[n - 1, b] if n > 0 else torch.zeros(E) for b, n in enumerate(lens.tolist())])}[mode]
    xin = x.transpose(0, 1).contiguous() if bf else x
    inputs, types = [("x", xin)], [("x", "f32[B, T, %d]" % E if bf else "f32[T, B, %d]" % E)]
    fields = {"input": "x", "mode": mode}
    if lengths:
        inputs.append(("lens", lens))
        types.append(("lens", "i64[B]"))
        fields["lengths"] = "lens"
    if bf:
        fields["batch_first"] = True
    fields["out"] = ["y"]
    name = "pool-%s%s%s" % (mode, "-lengths" if lengths else "", "-bf" if bf else "")
    text = yaml_model(types, [yaml_node("pool", fields)], [("y", "y")])
    return Case(name, "norm" if mode == "mean" else "exact", text, {}, inputs, [("y", y)], {"T": T, "B": B})


def conv1d_case(O, k, stride=1, padding=0, dilation=1, groups=1, channels_last=False, T=11, B=2, C=6, seed=0):
    """nn.Conv1d named cv; padding `causal` is F.pad on the left, then the conv."""
    torch.manual_seed(seed)
    mod = nn.Conv1d(C, O, k, stride=stride, padding=0 if padding == "causal" else padding, dilation=dilation,
                    groups=groups).eval()
    x = randn(B, C, T)
    with torch.no_grad():
        y = mod(nn.functional.pad(x, (dilation * (k - 1), 0))) if padding == "causal" else mod(x)
    if channels_last:
        x, y = x.transpose(1, 2).contiguous(), y.transpose(1, 2).contiguous()
    fields = {"name": "cv", "input": "x", "out_channels": O, "kernel_size": k}
    for key, v, dflt in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1), ("groups", groups, 1)):
        if v != dflt:
            fields[key] = v
    if channels_last:
        fields["channels_last"] = True
    fields["out"] = ["y"]
    xtype = "f32[B, T, %d]" % C if channels_last else "f32[B, %d, T]" % C
    name = "conv1d-k%d%s%s%s%s%s" % (k, "-s%d" % stride if stride != 1 else "", "-p%s" % padding if padding else "",
                                     "-d%d" % dilation if dilation != 1 else "", "-g%d" % groups if groups != 1 else "",
                                     "-cl" if channels_last else "")
    text = yaml_model([("x", xtype)], [yaml_node("conv1d", fields)], [("y", "y")])
    return Case(name, "linear", text, prefixed(mod.state_dict(), "cv"), [("x", x)], [("y", y)], {"T": T, "B": B})


def layer_cases():
    """The table of layer cases, in the order they are printed."""
    c = [
        linear_case(True), linear_case(False), linear_case(True, params="model.head"),
        embedding_case(torch.int64, None), embedding_case(torch.int64, 0), embedding_case(torch.int32, 3),
        embedding_case(torch.int64, 2, pad_row_nonzero=True),
        layernorm_case(True), layernorm_case(False), rmsnorm_case(), dropout_case(),
    ]
    for kind in ("rnn", "lstm", "gru"):
        c += [
            rnn_case(kind, 7, 3),
            rnn_case(kind, 1, 1),
            rnn_case(kind, 7, 1, layers=2),
            rnn_case(kind, 7, 3, bi=True),
            rnn_case(kind, 7, 3, bf=True, h0=True),
            rnn_case(kind, 7, 3, layers=2, bi=True, bf=True, h0=True),
            rnn_case(kind, 7, 3, bi=True, bias=False),
        ]
    c += [
        rnn_case("rnn", 7, 3, nonlinearity="relu"),
        rnn_case("rnn", 7, 3, layers=2, bi=True, nonlinearity="relu", h0=True),
        rnn_case("lstm", 7, 3, proj=4),
        rnn_case("lstm", 7, 3, layers=2, bi=True, bf=True, proj=5, h0=True),
        rnn_case("gru", 1024, 3, bi=True, h0=True),
        rnn_case("lstm", 1024, 3, layers=2, proj=6, h0=True),
        rnn_case("rnn", 1024, 1, bf=True),
        composition_case(7, 3),
        composition_case(1024, 1),
        bad_weights_case(),
    ]
    for kind in ("rnn", "lstm", "gru"):
        c += [lengths_case(kind, 9, 4), lengths_case(kind, 9, 4, layers=2, bi=True, bf=True)]
    c += [lengths_case("gru", 1024, 3, bi=True)]
    c += [
        attention_case(7, 3), attention_case(1, 1), attention_case(7, 3, bf=True),
        attention_case(7, 3, causal=True), attention_case(7, 3, lengths=True),
        attention_case(7, 3, causal=True, lengths=True), attention_case(7, 3, kv=True),
        attention_case(512, 2, causal=True), attention_case(9, 3, window=3), attention_case(300, 1, window=32),
        encoder_case(7, 3), encoder_case(7, 3, norm_first=True, activation="gelu", bf=True),
        encoder_case(7, 3, lengths=True), encoder_case(256, 1, norm_first=True),
        decoder_case(7, 5, 3), decoder_case(7, 5, 3, norm_first=True, activation="gelu", bf=True),
        decoder_case(6, 9, 3, causal=False, lengths=True), decoder_case(64, 33, 2, norm_first=True),
    ]
    for mode in ("mean", "max", "first", "last"):
        c += [pool_case(mode, False), pool_case(mode, True), pool_case(mode, True, bf=True)]
    c += [conv1d_case(4, 3), conv1d_case(4, 3, padding=1), conv1d_case(8, 5, stride=2, padding=2, groups=2),
          conv1d_case(4, 3, padding="same", dilation=2, channels_last=True),
          conv1d_case(6, 4, padding="causal", dilation=2, groups=3), conv1d_case(6, 1, groups=6, channels_last=True),
          conv1d_case(8, 3, padding="causal", T=1024, B=1)]
    return c


# ---------------------------------------------------------------------------
# Self-test: the same harness on models written with primitive ops, which
# seqc compiles today; also measures recurrent errors for TOLERANCES.


def scan_model(kind, I, H):
    """One unidirectional layer as a `scan` in primitive ops, PyTorch's
    equations (ALGORITHMS.md section 3)."""
    lin = ["gx = add(matmul(xt, weight_ih_l0, transpose_b=true), bias_ih_l0)",
           "gh = add(matmul(hc, weight_hh_l0, transpose_b=true), bias_hh_l0)"]
    G = {"rnn": 1, "lstm": 4}.get(kind, 3)  # gates per unit
    sizes = "sizes=[%s]" % ", ".join([str(H)] * G)
    if kind == "rnn":
        body = lin + ["hn = relu(add(gx, gh))"]
        carries, nxt = "{hc: h0}", "{hc: hn}"
    elif kind == "gru-reset-before-matmul":  # ONNX linear_before_reset=0: must be rejected
        body = ["gx = add(matmul(xt, weight_ih_l0, transpose_b=true), bias_ih_l0)",
                "wr, wz, wn = split(weight_hh_l0, axis=0, %s)" % sizes,
                "br, bz, bn = split(bias_hh_l0, axis=-1, %s)" % sizes,
                "xr, xz, xn = split(gx, axis=-1, %s)" % sizes,
                "r = sigmoid(add(xr, add(matmul(hc, wr, transpose_b=true), br)))",
                "z = sigmoid(add(xz, add(matmul(hc, wz, transpose_b=true), bz)))",
                "n = tanh(add(xn, add(matmul(mul(r, hc), wn, transpose_b=true), bn)))",
                "hn = add(mul(sub(1.0, z), n), mul(z, hc))"]
        carries, nxt = "{hc: h0}", "{hc: hn}"
    elif kind == "gru":
        body = lin + ["xr, xz, xn = split(gx, axis=-1, %s)" % sizes,
                      "hr, hz, hh = split(gh, axis=-1, %s)" % sizes,
                      "r = sigmoid(add(xr, hr))", "z = sigmoid(add(xz, hz))",
                      "n = tanh(add(xn, mul(r, hh)))",
                      "hn = add(mul(sub(1.0, z), n), mul(z, hc))"]
        carries, nxt = "{hc: h0}", "{hc: hn}"
    else:
        body = lin + ["g = add(gx, gh)",
                      "gi, gf, gg, go = split(g, axis=-1, %s)" % sizes,
                      "cn = add(mul(sigmoid(gf), cc), mul(sigmoid(gi), tanh(gg)))",
                      "hn = mul(sigmoid(go), tanh(cn))"]
        carries, nxt = "{hc: h0, cc: c0}", "{hc: hn, cc: cn}"
    outs = ["hT", "cT", "y"] if kind == "lstm" else ["hT", "y"]
    lines = ["  - scan:", "      out: %s" % yaml_value(outs), "      carry: %s" % carries,
             "      over: {xt: x}",
             "      with: [weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0]", "      body:"]
    lines += ["        - %s" % b for b in body]
    lines += ["      next: %s" % nxt, "      emit: [hn]"]
    inputs = [("x", "f32[T, B, %d]" % I), ("h0", "f32[B, %d]" % H)]
    if kind == "lstm":
        inputs.append(("c0", "f32[B, %d]" % H))
    params = [("weight_ih_l0", "f32[%d, %d]" % (G * H, I)), ("weight_hh_l0", "f32[%d, %d]" % (G * H, H)),
              ("bias_ih_l0", "f32[%d]" % (G * H)), ("bias_hh_l0", "f32[%d]" % (G * H))]
    outputs = [("y", "y"), ("hn", "hT")] + ([("cn", "cT")] if kind == "lstm" else [])
    return yaml_model(inputs, ["\n".join(lines)], outputs, params)


def self_scan_case(kind, T, B, I=8, H=16, seed=0):
    """One layer of kind as a scan (rnn: the relu variant), h0 (and c0) given;
    the wrong GRU variant is compared with nn.GRU and must be rejected."""
    torch.manual_seed(seed)
    if kind == "rnn":
        mod = nn.RNN(I, H, nonlinearity="relu")
    else:
        mod = nn.LSTM(I, H) if kind == "lstm" else nn.GRU(I, H)
    init_recurrent(mod)
    mod.eval()
    x, h0 = randn(T, B, I), randn(B, H)
    inputs = [("x", x), ("h0", h0)]
    with torch.no_grad():
        if kind == "lstm":
            c0 = randn(B, H)
            inputs.append(("c0", c0))
            y, (hn, cn) = mod(x, (h0[None], c0[None]))
            expected = [("y", y), ("hn", hn[0]), ("cn", cn[0])]
        else:
            y, hn = mod(x, h0[None])
            expected = [("y", y), ("hn", hn[0])]
    name = "self-scan-%s-T%d" % (kind, T)
    return Case(name, "recurrent", scan_model(kind, I, H), mod.state_dict(), inputs, expected,
                {"T": T, "B": B}, expect_fail=kind.startswith("gru-"))


def self_cases():
    torch.manual_seed(0)
    fc = nn.Linear(12, 5).eval()
    x = randn(3, 7, 12)
    with torch.no_grad():
        y = fc(x)
    weights = {"head.0.weight": fc.weight, "head.0.bias": fc.bias}
    params = [("head.0.weight", "f32[5, 12]"), ("head.0.bias", "f32[5]")]

    def linear_model(line, params):
        return yaml_model([("x", "f32[B, T, 12]")], [line], [("y", "y")], params)

    ok_line = "y = add(matmul(x, head.0.weight, transpose_b=true), head.0.bias)"
    bad_line = "y = matmul(x, head.0.weight, transpose_b=true)"  # forgets the bias
    cases = [
        Case("self-linear", "linear", linear_model(ok_line, params), weights, [("x", x)], [("y", y)],
             {"T": 7, "B": 3}),
        Case("self-linear-no-bias-rejected", "linear", linear_model(bad_line, params[:1]),
             {"head.0.weight": fc.weight}, [("x", x)], [("y", y)], {"T": 7, "B": 3}, expect_fail=True),
    ]
    emb = nn.Embedding(10, 6, padding_idx=0).eval()
    for dtype in (torch.int64, torch.int32):
        ids = embedding_ids(7, 3, 10, 0, dtype, 0)
        name = "self-gather-%s" % str(dtype)[6:]
        text = yaml_model([("ids", "%s[T, B]" % str(dtype)[6:].replace("int", "i"))],
                          ["e = gather(emb.weight, ids, axis=0)"], [("e", "e")], [("emb.weight", "f32[10, 6]")])
        cases.append(Case(name, "exact", text, {"emb.weight": emb.weight}, [("ids", ids)],
                          [("e", emb(ids).detach())], {"T": 7, "B": 3}))
    ln = nn.LayerNorm(32).eval()
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-1, 1)
    xn = randn(3, 7, 32) * 3 + 2
    text = yaml_model([("x", "f32[B, T, 32]")], ["y = layernorm(x, w, b, eps=1e-5)"],
                      [("y", "y")], [("w", "f32[32]"), ("b", "f32[32]")])
    cases.append(Case("self-layernorm", "norm", text, {"w": ln.weight, "b": ln.bias}, [("x", xn)],
                      [("y", ln(xn).detach())], {"T": 7, "B": 3}))
    w = torch.empty(32).uniform_(0.5, 1.5)
    text = yaml_model([("x", "f32[B, T, 32]")],
                      ["y = mul(mul(x, rsqrt(add(reduce_mean(mul(x, x), axes=[-1], keepdims=true), 1e-6))), w)"],
                      [("y", "y")], [("w", "f32[32]")])
    cases.append(Case("self-rmsnorm", "norm", text, {"w": w}, [("x", xn)], [("y", rmsnorm_ref(xn, w, 1e-6))],
                      {"T": 7, "B": 3}))
    for kind in ("rnn", "gru", "lstm"):
        cases.append(self_scan_case(kind, 7, 3))
        cases.append(self_scan_case(kind, 1024, 3, seed=1))
    cases.append(self_scan_case("gru-reset-before-matmul", 7, 3))
    return cases


# ---------------------------------------------------------------------------
# Comparison


def compare(got, exp, family, skip=None):
    """(ok, max abs error, max rel error, first bad index or None). `skip`
    marks elements excluded from parity (rows PyTorch leaves unspecified)."""
    atol, rtol = TOLERANCES[family]
    g, e = got.double(), exp.double()
    err = (g - e).abs()
    err[g == e] = 0.0  # equal infinities
    err[torch.isnan(g) | torch.isnan(e)] = math.inf  # a NaN never matches
    if skip is not None:
        err[skip] = 0.0
    bad = err > atol + rtol * e.abs()
    big = e.abs() >= REL_FLOOR
    rel = (err[big] / e.abs()[big]).max().item() if big.any() else 0.0
    first = None
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0])
    return first is None, (err.max().item() if err.numel() else 0.0), rel, first


def fmt_errors(results):
    return ", ".join("%s abs %.1e rel %.1e" % (n, a, r) for n, _, a, r, _ in results)


def check_outputs(case, suffix):
    """Reads CASE/OUTPUT.suffix for every output and compares it with torch.
    Returns (ok, [(name, ok, abs, rel, detail)])."""
    results, all_ok = [], True
    for name, exp in case.expected:
        path = os.path.join(case.dir, "%s.%s" % (name, suffix))
        try:
            got = read_raw(path, exp)
        except (OSError, ValueError) as e:
            results.append((name, False, math.inf, math.inf, "%s: %s" % (name, e)))
            all_ok = False
            continue
        ok, a, r, first = compare(got, exp, case.family, case.skip.get(name))
        detail = None
        if not ok:
            atol, rtol = TOLERANCES[case.family]
            detail = "%s%s: got %.9g, expected %.9g (atol %g, rtol %g)" % (
                name, list(first), got[first].item(), exp[first].item(), atol, rtol)
        results.append((name, ok, a, r, detail))
        all_ok &= ok
    return all_ok, results


def outputs_identical(case):
    """Whether the .so wrote bitwise the same outputs as the JIT."""
    def data(name, suffix):
        with open(os.path.join(case.dir, name + suffix), "rb") as f:
            return f.read()
    return all(data(name, ".jit") == data(name, ".out") for name, _ in case.expected)


# ---------------------------------------------------------------------------
# Running seqc


def first_error(text, limit=400):
    """The first diagnostic of a tool's output on one line: the first line
    that says "error" (else the first line) and, when it ends with ':', the
    lines that continue it."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if not lines:
        return "(no message)"
    at = next((i for i, l in enumerate(lines) if "error" in l), 0)
    msg = lines[at]
    for more in lines[at + 1:]:
        if not msg.endswith(":"):
            break
        msg += " " + more
    return msg if len(msg) <= limit else msg[:limit] + "..."


def run_tool(label, cmd, timeout=600, want_error=None):
    """(ok, message) for one command; the message starts with label. With
    want_error, ok means the command failed with a message containing each
    of those strings."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "%s: timed out after %d s" % (label, timeout)
    except OSError as e:  # not executable, vanished while being rebuilt, ...
        return False, "%s: cannot run %s: %s" % (label, cmd[0], e.strerror)
    text = p.stderr + p.stdout
    if want_error is not None:
        if p.returncode == 0:
            return False, "%s: succeeded, but should have failed naming %s" % (label, ", ".join(want_error))
        missing = [w for w in want_error if w not in text]
        if missing:
            return False, "%s: the message lacks %s: %s" % (label, ", ".join(missing), first_error(text))
        return True, "%s: %s" % (label, first_error(text))
    if p.returncode != 0:
        return False, "%s: %s" % (label, first_error(text))
    return True, ""


def write_case(case, work):
    case.dir = os.path.join(work, case.id)
    os.makedirs(case.dir, exist_ok=True)
    case.model = os.path.join(case.dir, case.id + ".yaml")
    with open(case.model, "w") as f:
        f.write(case.yaml)
    case.weights_path = os.path.join(case.dir, "weights.safetensors")
    export_torch.write_safetensors(case.weights_path, case.weights, {"generator": "tests/torch/parity.py"})
    for name, t in case.inputs:
        t.contiguous().numpy().tofile(os.path.join(case.dir, name + ".bin"))
    for name, _ in case.expected:  # never compare a previous run's results
        for suffix in (".jit", ".out"):
            if os.path.exists(os.path.join(case.dir, name + suffix)):
                os.remove(os.path.join(case.dir, name + suffix))


def run_case(case, seqc, run_so):
    """Runs the JIT and the .so; returns the line to print and whether the case passed."""
    dims = [a for s, v in sorted(case.dims.items()) for a in ("--dim", "%s=%d" % (s, v))]
    ins = [a for n, _ in case.inputs for a in ("--input", "%s=%s" % (n, os.path.join(case.dir, n + ".bin")))]
    outs = [a for n, _ in case.expected for a in ("--output", "%s=%s" % (n, os.path.join(case.dir, n + ".jit")))]
    so = os.path.join(case.dir, case.id + ".so")
    run_jit = [seqc, "run", case.model, "--weights", case.weights_path] + dims + ins + outs
    run_dl = [run_so, so, case.weights_path, case.dir] + ["%s=%d" % kv for kv in sorted(case.dims.items())]
    if case.expect_error:
        return run_bad_weights(case, seqc, so, run_jit, run_dl)
    ok, msg = run_tool("seqc run", run_jit)
    if not ok:
        return verdict(case, None, msg)
    jit_ok, jit = check_outputs(case, "jit")
    ok, msg = run_tool("seqc build", [seqc, "build", case.model, "-o", so])
    if ok:
        ok, msg = run_tool("run_so", run_dl)
    if not ok:
        return verdict(case, None, "jit: %s; .so: %s" % (fmt_errors(jit), msg))
    so_ok, so_res = check_outputs(case, "out")
    text = "%s [jit]; .so: %s" % (fmt_errors(jit), "same" if outputs_identical(case) else fmt_errors(so_res))
    bad = [d for _, _, _, _, d in jit + so_res if d]
    if bad:
        text += "; over: " + bad[0]
    return verdict(case, jit_ok and so_ok, text)


def run_bad_weights(case, seqc, so, run_jit, run_dl):
    """Both ways of opening the weights must fail with the expected message."""
    ok, jit = run_tool("seqc run", run_jit, want_error=case.expect_error)
    if not ok:
        return verdict(case, None, jit)
    ok, msg = run_tool("seqc build", [seqc, "build", case.model, "-o", so])
    if ok:
        ok, msg = run_tool("run_so", run_dl, want_error=case.expect_error)
    return verdict(case, ok or None, "rejected at open: %s; %s" % (jit, msg) if ok else msg)


def verdict(case, ok, text):
    """ok: whether every output is within tolerance, None when seqc failed
    (a failure for every case: an expected rejection must come from the
    comparison)."""
    passed = ok is not None and ok != case.expect_fail
    tag = " (expected to be rejected)" if case.expect_fail else ""
    return "%s %s%s: %s" % ("ok  " if passed else "FAIL", case.label(), tag, text), passed


# ---------------------------------------------------------------------------
# Negative checks: hand-written recurrences in torch


def gru_by_hand(mod, x, h, reset_after=True):
    """One-layer GRU; reset_after=False is ONNX linear_before_reset=0:
    n = tanh(W_in x + b_in + W_hn (r*h) + b_hn). Returns (y, r values seen)."""
    Wi, Wh, bi, bh = mod.weight_ih_l0, mod.weight_hh_l0, mod.bias_ih_l0, mod.bias_hh_l0
    H = mod.hidden_size
    ys, rs = [], []
    for xt in x:
        gx = xt @ Wi.T + bi
        xr, xz, xn = gx.split(H, -1)
        hr, hz, hn = (h @ Wh.T + bh).split(H, -1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        if reset_after:
            n = torch.tanh(xn + r * hn)
        else:
            n = torch.tanh(xn + (r * h) @ Wh[2 * H:].T + bh[2 * H:])
        h = (1 - z) * n + z * h
        ys.append(h)
        rs.append(r)
    return torch.stack(ys), torch.stack(rs)


def lstm_by_hand(mod, x, h, c, order="ifgo"):
    """One-layer LSTM reading the gate chunks of PyTorch's weights in `order`
    (ONNX's is "iofg": i, o, f, c)."""
    H = mod.hidden_size
    ys = []
    for xt in x:
        g_all = xt @ mod.weight_ih_l0.T + mod.bias_ih_l0 + h @ mod.weight_hh_l0.T + mod.bias_hh_l0
        gates = dict(zip(order, g_all.split(H, -1)))
        c = torch.sigmoid(gates["f"]) * c + torch.sigmoid(gates["i"]) * torch.tanh(gates["g"])
        h = torch.sigmoid(gates["o"]) * torch.tanh(c)
        ys.append(h)
    return torch.stack(ys)


NEGATIVE_CHECKS = ("gru-reset-before-matmul", "lstm-onnx-gate-order")


def negative_checks():
    """Lines and verdicts of the discrimination checks."""
    out = []
    torch.manual_seed(7)
    T, B, I, H = 64, 3, 8, 16
    gru = nn.GRU(I, H)
    init_recurrent(gru)
    x, h0 = randn(T, B, I), randn(1, B, H)
    with torch.no_grad():
        ref, _ = gru(x, h0)
        right, rs = gru_by_hand(gru, x, h0[0], True)
        wrong, _ = gru_by_hand(gru, x, h0[0], False)
        b_hn = gru.bias_hh_l0[2 * H:].abs().max().item()
    lo, hi = rs.min().item(), rs.max().item()
    spread = lo < 0.1 and hi > 0.9 and b_hn > 0.5
    ok_r, a_r, _, _ = compare(right, ref, "recurrent")
    ok_w, a_w, _, _ = compare(wrong, ref, "recurrent")
    passed = spread and ok_r and not ok_w
    out.append(("%s negative gru-reset-before-matmul T=%d B=%d: sigmoid(r) in [%.2f, %.2f], max|b_hn| %.2f; "
                "PyTorch's variant by hand abs %.1e (accepted: %s), linear_before_reset=0 abs %.1e "
                "(rejected: %s)" % ("ok  " if passed else "FAIL", T, B, lo, hi, b_hn, a_r, ok_r, a_w, not ok_w),
                passed))
    lstm = nn.LSTM(I, H)
    init_recurrent(lstm)
    c0 = randn(1, B, H)
    with torch.no_grad():
        ref, _ = lstm(x, (h0, c0))
        right = lstm_by_hand(lstm, x, h0[0], c0[0], "ifgo")
        wrong = lstm_by_hand(lstm, x, h0[0], c0[0], "iofg")
    ok_r, a_r, _, _ = compare(right, ref, "recurrent")
    ok_w, a_w, _, _ = compare(wrong, ref, "recurrent")
    passed = ok_r and not ok_w
    out.append(("%s negative lstm-onnx-gate-order T=%d B=%d: i,f,g,o by hand abs %.1e (accepted: %s), "
                "i,o,f,c abs %.1e (rejected: %s)" % ("ok  " if passed else "FAIL", T, B, a_r, ok_r, a_w, not ok_w),
                passed))
    return out


# ---------------------------------------------------------------------------


def build_runner(work):
    exe = os.path.join(work, "run_so")
    cc = os.environ.get("CC", "cc")
    ok, msg = run_tool(cc, [cc, "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O1", "-Wall", "-Wextra", "-Werror",
                        os.path.join(HERE, "run_so.c"), "-o", exe, "-ldl"])
    if not ok:
        sys.exit("torch parity: cannot build the .so runner: " + msg)
    return exe


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seqc", default=os.path.join(REPO, "build", "seqc"), help="the seqc binary (build/seqc)")
    ap.add_argument("--work", help="directory for models, weights and outputs (default: a temporary one, removed)")
    ap.add_argument("-k", dest="filter", help="run only the cases whose name contains this")
    ap.add_argument("-j", dest="jobs", type=int, default=os.cpu_count() or 1, help="cases run in parallel")
    ap.add_argument("--self-test", action="store_true",
                    help="run the harness on models written with primitive ops instead of the layers")
    ap.add_argument("-v", action="store_true", help="print the tolerances and each model's path")
    args = ap.parse_args()
    if sys.byteorder != "little":
        sys.exit("torch parity: raw tensor files are little-endian; this host is not")
    seqc = os.path.abspath(args.seqc)
    if not os.access(seqc, os.X_OK):
        sys.exit("torch parity: %s is not an executable (build it with make)" % seqc)
    torch.set_num_threads(1)
    start = time.time()
    work = args.work or tempfile.mkdtemp(prefix="seqc-parity-")
    os.makedirs(work, exist_ok=True)
    try:
        results = run_all(args, seqc, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    passed = sum(1 for ok in results if ok)
    failed = len(results) - passed
    print("torch parity: %d passed, %d failed (%.0f s)" % (passed, failed, time.time() - start))
    return 0 if failed == 0 and results else 1


def run_all(args, seqc, work):
    if args.v:
        for fam, (atol, rtol) in TOLERANCES.items():
            print("tolerance %-9s atol %g rtol %g" % (fam, atol, rtol))
    run_so = build_runner(work)
    cases = self_cases() if args.self_test else layer_cases()
    if args.filter:
        cases = [c for c in cases if args.filter in c.name]
        if not cases and not any(args.filter in n for n in NEGATIVE_CHECKS):
            sys.exit("torch parity: no case name contains '%s'" % args.filter)
    ids = [c.id for c in cases]
    assert len(set(ids)) == len(ids), "two cases with the same name and dims"
    for c in cases:
        write_case(c, work)
    results = []
    for line, ok in negative_checks():
        if not args.filter or args.filter in line.split()[2]:  # "ok   negative NAME ..."
            print(line, flush=True)
            results.append(ok)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_case, c, seqc, run_so) for c in cases]
        for c, f in zip(cases, futures):
            line, ok = f.result()
            print(line + ("\n     model: %s" % c.model if args.v else ""), flush=True)
            results.append(ok)
    return results


if __name__ == "__main__":
    sys.exit(main())
