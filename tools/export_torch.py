#!/usr/bin/python3
"""Export a PyTorch module to a seqc model: PREFIX.yaml + PREFIX.safetensors.

The model file uses seqc's layer nodes (docs/layers.md), one per PyTorch
layer, and the weights file is exactly the module's state_dict, written by
hand (Debian 12 has no safetensors package; bf16 tensors are written through
an int16 view, f16/f32/f64 directly). Run it with Debian's python3-torch,
which imports only from /usr/bin/python3:

    /usr/bin/python3 tools/export_torch.py MODULE.pt --name NAME \\
        --input x=f32[T,B,8] [--input ...] -o PREFIX [--batch-first yes|no]

MODULE.pt is a whole module saved with torch.save(module, path) (standard
modules load without user code; a state_dict alone does not say which layers
it holds and is refused). As a library:

    import export_torch   # tools/ on sys.path
    outputs = export_torch.export(module, "tagger", {"ids": "i64[B, T]"}, "out/tagger")

writes out/tagger.yaml and out/tagger.safetensors and returns the model's
output names. Then:

    seqc run out/tagger.yaml --weights out/tagger.safetensors --input ids=ids.bin ...

Supported modules (PyTorch 1.13; the model computes the module's eval-mode
forward: dropout is the identity):

  a single standard module
    nn.RNN, nn.GRU, nn.LSTM    every option seqc has (num_layers, bidirectional,
                               batch_first, bias, proj_size, nonlinearity);
                               inputs x [, h0 [, c0]]; outputs y, hn [, cn]
    nn.Linear, nn.Conv1d (zero padding; [N, C, L] as PyTorch), nn.Embedding,
    nn.LayerNorm (over the last dim only)
    nn.MultiheadAttention      inputs: x (self-attention) or query, key, value;
                               output y (the attention weights are not exported)
    nn.TransformerEncoderLayer, nn.TransformerEncoder (a stack, with its final
                               norm): input x; output y
    nn.TransformerDecoderLayer inputs: x, memory; output y
  nn.Sequential compositions (nested too) of nn.Embedding, nn.Linear,
    nn.LayerNorm, nn.Dropout, nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU,
    nn.TransformerEncoderLayer and nn.TransformerEncoder: input x; output y

Inputs are given in the order of the module's forward arguments, each as a
seqc type (docs/yaml.md): f32[T, B, 8], i64[B, T], ... Masks, lengths and
initial states other than h0/c0 are not exported. `batch_first` (yes/no)
states the layout of the inputs; every layer with a batch_first option must
then agree with it. Anything else (another module type, a subclass of a
supported one, a forward hook, an option seqc does not have) is an error that
names the module type and its path in the module tree: never a silently
different model. The exit status is 1 after an error, 2 for bad arguments.
"""

import argparse
import json
import os
import re
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# Errors and names


class ExportError(Exception):
    """A module or an argument the exporter cannot turn into a seqc model."""


def where(path):
    return "at '%s'" % path if path else "at the top level"


def type_name(mod):
    """nn.Linear for torch's modules, module.Class for others."""
    cls = type(mod)
    return ("nn." if cls.__module__.startswith("torch.nn") else cls.__module__ + ".") + cls.__qualname__


def refuse(mod, path, why):
    raise ExportError("%s %s: %s" % (type_name(mod), where(path), why))


def join(path, child):
    return "%s.%s" % (path, child) if path else child


NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
C_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RESERVED = {"nan", "inf", "true", "false"}


def is_name(s):
    """A seqc value name (docs/yaml.md "Names")."""
    return bool(NAME_RE.match(s)) and s not in RESERVED


# ---------------------------------------------------------------------------
# Input types

DTYPES = ("f32", "f64", "f16", "bf16", "i32", "i64", "bool")
FLOATS = ("f32", "f64", "f16", "bf16")
INTS = ("i32", "i64")


def split_top(text):
    """Splits at the commas outside parentheses (a dim may be ceildiv(T, 64))."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def parse_type(name, text):
    """(dtype, [dims]) of a seqc type string such as 'f32[T,B,8]'."""
    m = re.match(r"\s*([a-z0-9]+)\s*\[(.*)\]\s*\Z", text)
    if not m or m.group(1) not in DTYPES:
        raise ExportError("input '%s': '%s' is not a seqc type such as f32[T, B, 8] (dtypes: %s)"
                          % (name, text, ", ".join(DTYPES)))
    dims = split_top(m.group(2)) if m.group(2).strip() else []
    for d in dims:
        if not re.match(r"[A-Za-z0-9_+\-*/(), ]+\Z", d):
            raise ExportError("input '%s': bad dim '%s' in '%s'" % (name, d, text))
    return m.group(1), dims


# ---------------------------------------------------------------------------
# The model being written


class Model:
    """The graph: input types, layer nodes and the dtypes of its values."""

    def __init__(self, inputs, batch_first):
        self.inputs = []   # [(name, dtype, dims)]
        self.dtype = {}    # value name: dtype
        for name, text in inputs.items():
            if not C_IDENT_RE.match(name) or name in RESERVED:
                raise ExportError("input name '%s' is not a C identifier" % name)
            dtype, dims = parse_type(name, text)
            self.inputs.append((name, dtype, dims))
            self.dtype[name] = dtype
        floats = [d for _, d, _ in self.inputs if d in FLOATS]
        self.float = floats[0] if floats else "f32"  # parameters follow the inputs' float type
        self.batch_first = batch_first
        self.nodes = []    # [(comment, text)]
        self.claimed = {}  # state_dict key: path of the layer that reads it

    def fresh(self, base):
        """A value name not used yet, based on base."""
        name, n = base, 1
        while name in self.dtype:
            name, n = "%s_%d" % (base, n), n + 1
        return name

    def node(self, mod, path, kind, fields, out_dtypes):
        """Appends a layer node; fields without 'out' (added here, from out_dtypes)."""
        fields["out"] = list(out_dtypes)
        for v, dt in out_dtypes.items():
            self.dtype[v] = dt
        self.nodes.append((describe(mod, path), yaml_node(kind, fields)))
        return fields["out"][0]

    def op(self, mod, path, line, out, dtype):
        self.dtype[out] = dtype
        self.nodes.append((describe(mod, path), "  - %s" % line))
        return out

    def claim(self, path, keys):
        for k in keys:
            self.claimed[join(path, k)] = path

    def want(self, mod, path, value, kinds, what):
        """Checks the dtype of a layer's input value."""
        dt = self.dtype[value]
        if dt not in kinds:
            refuse(mod, path, "its %s '%s' is %s; it needs %s" % (what, value, dt, " or ".join(kinds)))

    def check_layout(self, mod, path, batch_first):
        if self.batch_first is not None and batch_first != self.batch_first:
            refuse(mod, path, "batch_first=%s, but the inputs were declared batch_first=%s"
                   % (batch_first, self.batch_first))


def describe(mod, path):
    """The comment above a node: the module's path and its one-line repr."""
    extra = mod.extra_repr()
    args = "(%s)" % extra if extra and "\n" not in extra else ""
    return "# %s: nn.%s%s" % (path or "module", type(mod).__name__, args)


def yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(yaml_scalar(x) for x in v) + "]"
    s = str(v)
    if not s or s[0].isdigit() or re.search(r"[^A-Za-z0-9_.\-]", s):
        return json.dumps(s)  # a YAML double-quoted scalar
    return s


def yaml_node(kind, fields):
    """A layer node in flow style when it fits on a line, else block style."""
    items = ["%s: %s" % (k, yaml_scalar(v)) for k, v in fields.items()]
    line = "  - %s: {%s}" % (kind, ", ".join(items))
    if len(line) <= 100:
        return line
    return "\n".join(["  - %s:" % kind] + ["      " + i for i in items])


# ---------------------------------------------------------------------------
# Layers


def check_plain(mod, path, cls):
    """The module is exactly cls (a subclass may have another forward) and has no hooks."""
    if type(mod) is not cls:
        refuse(mod, path, "a subclass of nn.%s; only nn.%s itself is supported (a subclass may compute "
               "something else)" % (cls.__name__, cls.__name__))
    if mod._forward_hooks or mod._forward_pre_hooks:
        refuse(mod, path, "it has forward hooks, which the exported model would not run")


def layer_name(model, path, label):
    """The layer's scope: its path when that is a seqc name, else label_PATH."""
    base = path if path and is_name(path) else (label + "_" + path.replace(".", "_") if path else label)
    return model.fresh(base)


def recurrent(model, mod, path, args, final):
    kind = {"RNN_TANH": "rnn", "RNN_RELU": "rnn", "LSTM": "lstm", "GRU": "gru"}[mod.mode]
    nstate = 2 if kind == "lstm" else 1
    if len(args) not in (1, 1 + nstate):
        refuse(mod, path, "takes x%s as inputs, got %d input(s)"
               % (" [, h0, c0]" if kind == "lstm" else " [, h0]", len(args)))
    model.check_layout(mod, path, mod.batch_first)
    for a in args:
        model.want(mod, path, a, FLOATS, "input")
    name = layer_name(model, path, kind)
    f = {"name": name, "params": path, "input": args[0], "hidden_size": mod.hidden_size}
    if mod.num_layers != 1:
        f["num_layers"] = mod.num_layers
    if mod.bidirectional:
        f["bidirectional"] = True
    if mod.batch_first:
        f["batch_first"] = True
    if not mod.bias:
        f["bias"] = False
    if kind == "rnn" and mod.nonlinearity != "tanh":
        f["nonlinearity"] = mod.nonlinearity
    if kind == "lstm" and mod.proj_size:
        f["proj_size"] = mod.proj_size
    if len(args) > 1:
        f["h0"] = args[1]
    if len(args) > 2:
        f["c0"] = args[2]
    model.claim(path, mod._flat_weights_names)
    outs = ["y", "hn", "cn"][:1 + nstate]
    dt = model.dtype[args[0]]
    model.node(mod, path, kind, f, {final[i] if final else model.fresh(name + "_" + o): dt
                                    for i, o in enumerate(outs)})


def linear(model, mod, path, x, out):
    model.want(mod, path, x, FLOATS, "input")
    name = layer_name(model, path, "fc")
    f = {"name": name, "params": path, "input": x, "out_features": mod.out_features}
    if mod.bias is None:
        f["bias"] = False
    model.claim(path, ["weight"] + (["bias"] if mod.bias is not None else []))
    return model.node(mod, path, "linear", f, {out or model.fresh(name): model.dtype[x]})


def conv1d(model, mod, path, x, out):
    """nn.Conv1d over [N, C, L] (channels first, as PyTorch), zero padding."""
    model.want(mod, path, x, FLOATS, "input")
    if mod.padding_mode != "zeros":
        refuse(mod, path, "padding_mode %r: seqc pads with zeros only" % mod.padding_mode)
    padding = mod.padding if isinstance(mod.padding, str) else mod.padding[0]
    if padding == "valid":
        padding = 0
    name = layer_name(model, path, "conv")
    f = {"name": name, "params": path, "input": x, "out_channels": mod.out_channels,
         "kernel_size": mod.kernel_size[0]}
    for key, v, dflt in (("stride", mod.stride[0], 1), ("padding", padding, 0), ("dilation", mod.dilation[0], 1),
                         ("groups", mod.groups, 1)):
        if v != dflt:
            f[key] = v
    if mod.bias is None:
        f["bias"] = False
    model.claim(path, ["weight"] + (["bias"] if mod.bias is not None else []))
    return model.node(mod, path, "conv1d", f, {out or model.fresh(name): model.dtype[x]})


def embedding(model, mod, path, x, out):
    model.want(mod, path, x, INTS, "input (token ids)")
    if mod.max_norm is not None:
        refuse(mod, path, "max_norm renormalizes the weight during forward; seqc's embedding does not")
    name = layer_name(model, path, "emb")
    f = {"name": name, "params": path, "input": x, "num_embeddings": mod.num_embeddings,
         "embedding_dim": mod.embedding_dim}
    if mod.padding_idx is not None:
        f["padding_idx"] = mod.padding_idx
    model.claim(path, ["weight"])
    return model.node(mod, path, "embedding", f, {out or model.fresh(name): model.float})


def layernorm(model, mod, path, x, out):
    model.want(mod, path, x, FLOATS, "input")
    check_layernorm(mod, path)
    name = layer_name(model, path, "ln")
    f = {"name": name, "params": path, "input": x, "eps": float(mod.eps)}
    if not mod.elementwise_affine:
        f["elementwise_affine"] = False
    model.claim(path, ["weight", "bias"] if mod.elementwise_affine else [])
    return model.node(mod, path, "layernorm", f, {out or model.fresh(name): model.dtype[x]})


def check_layernorm(mod, path):
    check_plain(mod, path, nn.LayerNorm)
    if len(mod.normalized_shape) != 1:
        refuse(mod, path, "normalized_shape %s covers %d dims; seqc's layernorm normalizes the last dim only"
               % (tuple(mod.normalized_shape), len(mod.normalized_shape)))


def dropout(model, mod, path, x, out):
    model.want(mod, path, x, FLOATS, "input")
    name = layer_name(model, path, "dropout")
    return model.node(mod, path, "dropout", {"input": x, "p": float(mod.p)}, {out or model.fresh(name): model.dtype[x]})


ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.SiLU: "silu", nn.GELU: "gelu"}


def activation(model, mod, path, x, out):
    model.want(mod, path, x, FLOATS, "input")
    op = ACTIVATIONS[type(mod)]
    call = "%s(%s)" % (op, x)
    if type(mod) is nn.GELU and mod.approximate != "none":
        if mod.approximate != "tanh":
            refuse(mod, path, "approximate='%s' (seqc has 'none' and 'tanh')" % mod.approximate)
        call = "gelu(%s, approximate=tanh)" % x
    y = out or model.fresh(layer_name(model, path, op))
    return model.op(mod, path, "%s = %s" % (y, call), y, model.dtype[x])


def check_attention(mod, path, self_attention):
    """An nn.MultiheadAttention seqc's attention computes: no bias_k/bias_v,
    no zero attention, a bias on both projections or on neither."""
    check_plain(mod, path, nn.MultiheadAttention)
    if mod.bias_k is not None or mod.bias_v is not None:
        refuse(mod, path, "add_bias_kv=True is not supported")
    if mod.add_zero_attn:
        refuse(mod, path, "add_zero_attn=True is not supported")
    if self_attention and not mod._qkv_same_embed_dim:
        refuse(mod, path, "kdim/vdim differ from embed_dim, so it needs a key and a value of their own")
    if (mod.in_proj_bias is None) != (mod.out_proj.bias is None):
        refuse(mod, path, "in_proj_bias and out_proj.bias must both be present or both absent")
    if not isinstance(mod.out_proj, nn.Linear):
        refuse(mod, path, "out_proj is not a Linear")
    keys = ["in_proj_weight"] if mod._qkv_same_embed_dim else ["q_proj_weight", "k_proj_weight", "v_proj_weight"]
    if mod.in_proj_bias is not None:
        keys += ["in_proj_bias", "out_proj.bias"]
    return keys + ["out_proj.weight"]


def attention(model, mod, path, args, final):
    if len(args) not in (1, 3):
        refuse(mod, path, "takes x (self-attention) or query, key, value as inputs, got %d input(s)" % len(args))
    keys = check_attention(mod, path, len(args) == 1)
    model.check_layout(mod, path, mod.batch_first)
    for a in args:
        model.want(mod, path, a, FLOATS, "input")
    name = layer_name(model, path, "attn")
    f = {"name": name, "params": path, "input": args[0]}
    if len(args) == 3:
        f.update(key=args[1], value=args[2])
    f["num_heads"] = mod.num_heads
    if mod.in_proj_bias is None:
        f["bias"] = False
    if mod.batch_first:
        f["batch_first"] = True
    model.claim(path, keys)
    model.node(mod, path, "multihead_attention", f, {final[0] if final else model.fresh(name): model.dtype[args[0]]})


def activation_name(mod, path):
    """'relu' or 'gelu' for a transformer layer's activation (a function or a module)."""
    act = mod.activation
    if act is F.relu or type(act) is nn.ReLU:
        return "relu"
    if act is F.gelu or (type(act) is nn.GELU and act.approximate == "none"):
        return "gelu"
    refuse(mod, path, "activation %r is not supported (relu or exact gelu)" % (act,))


def transformer_fields(model, mod, path, attentions, norms):
    """Fields and state_dict keys shared by encoder and decoder layers."""
    keys = []
    for a in attentions:
        att = getattr(mod, a)
        keys += [a + "." + k for k in check_attention(att, join(path, a), True)]
        if att.in_proj_bias is None:
            refuse(mod, path, "attention without biases is not supported in a transformer layer")
    for lin in ("linear1", "linear2"):
        sub = getattr(mod, lin)
        check_plain(sub, join(path, lin), nn.Linear)
        if sub.bias is None:
            refuse(sub, join(path, lin), "a transformer layer's linear without bias is not supported")
        keys += [lin + ".weight", lin + ".bias"]
    eps = None
    for n in norms:
        ln = getattr(mod, n)
        check_layernorm(ln, join(path, n))
        if not ln.elementwise_affine:
            refuse(ln, join(path, n), "a transformer layer's norm without elementwise_affine is not supported")
        if eps is not None and ln.eps != eps:
            refuse(mod, path, "its norms have different eps (%g, %g)" % (eps, ln.eps))
        eps = ln.eps
        keys += [n + ".weight", n + ".bias"]
    self_attn = mod.self_attn
    model.check_layout(mod, path, self_attn.batch_first)
    f = {"nhead": self_attn.num_heads, "dim_feedforward": mod.linear1.out_features,
         "activation": activation_name(mod, path), "layer_norm_eps": float(eps)}
    if self_attn.batch_first:
        f["batch_first"] = True
    if mod.norm_first:
        f["norm_first"] = True
    return f, keys


def encoder_layer(model, mod, path, x, out):
    model.want(mod, path, x, FLOATS, "input")
    f, keys = transformer_fields(model, mod, path, ["self_attn"], ["norm1", "norm2"])
    name = layer_name(model, path, "enc")
    model.claim(path, keys)
    return model.node(mod, path, "transformer_encoder_layer", dict({"name": name, "params": path, "input": x}, **f),
                      {out or model.fresh(name): model.dtype[x]})


def encoder(model, mod, path, x, out):
    """nn.TransformerEncoder: its layers in order, then its final norm."""
    n = len(mod.layers)
    check_plain(mod.layers, join(path, "layers"), nn.ModuleList)
    for i, layer in enumerate(mod.layers):
        lp = join(path, "layers.%d" % i)
        check_plain(layer, lp, nn.TransformerEncoderLayer)
        last = i == n - 1 and mod.norm is None
        x = encoder_layer(model, layer, lp, x, out if last else None)
    if mod.norm is None:
        return x
    return layernorm(model, mod.norm, join(path, "norm"), x, out)


def decoder_layer(model, mod, path, args, final):
    if len(args) != 2:
        refuse(mod, path, "takes x and memory as inputs, got %d input(s)" % len(args))
    for a in args:
        model.want(mod, path, a, FLOATS, "input")
    f, keys = transformer_fields(model, mod, path, ["self_attn", "multihead_attn"], ["norm1", "norm2", "norm3"])
    name = layer_name(model, path, "dec")
    model.claim(path, keys)
    model.node(mod, path, "transformer_decoder_layer",
               dict({"name": name, "params": path, "input": args[0], "memory": args[1]}, **f),
               {final[0] if final else model.fresh(name): model.dtype[args[0]]})


def sequential(model, mod, path, x, out):
    """Children in order, each reading the previous one's output."""
    children = list(mod.named_children())
    if not children:
        refuse(mod, path, "an empty Sequential has nothing to export")
    for i, (child_name, child) in enumerate(children):
        if not re.match(r"[A-Za-z0-9_]+\Z", child_name):
            refuse(mod, path, "its child '%s' has a name seqc cannot use in a parameter name (letters, digits "
                   "and '_')" % child_name)
        last = i == len(children) - 1
        x = composable(model, child, join(path, child_name), x, out if last else None)
    return x


# Modules with one input and one output, which nn.Sequential composes.
COMPOSABLE = {nn.Linear: linear, nn.Conv1d: conv1d, nn.Embedding: embedding, nn.LayerNorm: layernorm,
              nn.Dropout: dropout,
              nn.TransformerEncoderLayer: encoder_layer, nn.TransformerEncoder: encoder,
              nn.Sequential: sequential}
COMPOSABLE.update({cls: activation for cls in ACTIVATIONS})
# Standard modules with several inputs or outputs: only at the top level.
STANDALONE = {nn.RNN: recurrent, nn.GRU: recurrent, nn.LSTM: recurrent, nn.MultiheadAttention: attention,
              nn.TransformerDecoderLayer: decoder_layer}


def supported_names(table):
    return ", ".join(sorted("nn." + c.__name__ for c in table))


def refuse_subclass(mod, path):
    """A subclass of a supported module is refused as such: its forward may differ."""
    base = next((c for c in type(mod).__mro__ if c in COMPOSABLE or c in STANDALONE), None)
    if base is not None:
        check_plain(mod, path, base)


def composable(model, mod, path, x, out):
    """Exports one module of a composition reading value x; returns the name
    of its result: `out` when given (the model's output), else a fresh one."""
    build = COMPOSABLE.get(type(mod))
    if build is None:
        if type(mod) in STANDALONE:
            refuse(mod, path, "it returns a tuple or takes several inputs, so it cannot stand inside an "
                   "nn.Sequential; export it on its own")
        refuse_subclass(mod, path)
        raise ExportError("unsupported module %s %s (supported in an nn.Sequential: %s)"
                          % (type_name(mod), where(path), supported_names(COMPOSABLE)))
    check_plain(mod, path, type(mod))
    return build(model, mod, path, x, out)


# ---------------------------------------------------------------------------
# Weights


def safetensors_dtype(t):
    return {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
            torch.int64: "I64", torch.int32: "I32"}.get(t.dtype)


# Which stored dtypes a parameter of each seqc dtype accepts (docs/abi.md:
# only exact widening conversions).
WIDENS_TO = {"f32": ("F32", "F16", "BF16"), "f64": ("F64", "F32", "F16", "BF16"), "f16": ("F16",),
             "bf16": ("BF16",)}


def tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: the same bits as int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata):
    """Writes {name: tensor} in the safetensors format (docs/weights.md),
    tensors sorted by name, data 8-byte aligned."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        data = tensor_bytes(t)
        header[name] = {"dtype": safetensors_dtype(t), "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for b in blobs:
            f.write(b)


def check_state_dict(model, state):
    """Every tensor is read by exactly the layer that claimed it, and each
    float tensor widens to the model's parameter dtype."""
    extra = sorted(set(state) - set(model.claimed))
    if extra:
        raise ExportError("state_dict key '%s' belongs to no exported layer (a parameter or buffer the "
                          "exporter does not know; seqc would refuse the extra tensor)" % extra[0])
    missing = sorted(set(model.claimed) - set(state))
    if missing:
        raise ExportError("the layer %s reads '%s', which the state_dict lacks"
                          % (where(model.claimed[missing[0]]), missing[0]))
    clash = sorted(set(model.dtype) & set(model.claimed))
    if clash:
        raise ExportError("the value name '%s' is also a parameter name; rename the input" % clash[0])
    for k, t in state.items():
        st = safetensors_dtype(t)
        if st not in WIDENS_TO[model.float]:
            raise ExportError("tensor '%s' is %s; parameters of a model with %s inputs must be %s"
                              % (k, t.dtype, model.float, " or ".join(WIDENS_TO[model.float])))


# ---------------------------------------------------------------------------
# The model file


def model_text(model, module, name, outputs, weights_file):
    lines = ["# Generated by tools/export_torch.py from torch.nn.%s (torch %s)." % (type(module).__name__,
                                                                                  torch.__version__),
             "# Weights: %s, the module's state_dict. Computes the module's eval-mode forward." % weights_file,
             "model: %s" % name, "inputs:"]
    lines += ["  %s: %s[%s]" % (n, dt, ", ".join(dims)) for n, dt, dims in model.inputs]
    lines.append("graph:")
    for comment, text in model.nodes:
        lines += ["  " + comment, text]
    lines.append("outputs: [%s]" % ", ".join(outputs))
    return "\n".join(lines) + "\n"


def export(module, name, inputs, path_prefix, batch_first=None):
    """Writes PATH_PREFIX.yaml and PATH_PREFIX.safetensors for `module`.

    name: the model's name (a C identifier). inputs: {input name: seqc type}
    in the order of the module's forward arguments, e.g. {"x": "f32[T, B, 8]"}.
    batch_first: None takes each layer's own layout; True or False states the
    inputs' layout, which every layer with a batch_first option must share.
    Returns the model's output names. Raises ExportError for a module or an
    argument it cannot export (nothing is written then)."""
    if not isinstance(module, nn.Module):
        raise ExportError("expected an nn.Module, got %s" % type(module).__name__)
    if not C_IDENT_RE.match(name):
        raise ExportError("model name '%s' is not a C identifier" % name)
    if not inputs:
        raise ExportError("no inputs given")
    model = Model(inputs, batch_first)
    args = [n for n, _, _ in model.inputs]
    if type(module) in STANDALONE:
        check_plain(module, "", type(module))
        n_out = 3 if type(module) is nn.LSTM else 2 if type(module) in (nn.RNN, nn.GRU) else 1
        outputs = [model.fresh(o) for o in ["y", "hn", "cn"][:n_out]]
        STANDALONE[type(module)](model, module, "", args, outputs)
    else:
        if type(module) in COMPOSABLE and len(args) != 1:
            refuse(module, "", "takes one input, got %d" % len(args))
        outputs = [model.fresh("y")]
        if type(module) not in COMPOSABLE:
            refuse_subclass(module, "")
            raise ExportError("unsupported module %s at the top level (supported: %s, and nn.Sequential "
                              "compositions of %s)" % (type_name(module), supported_names(STANDALONE),
                                                       supported_names(COMPOSABLE)))
        composable(model, module, "", args[0], outputs[0])
    state = module.state_dict()
    check_state_dict(model, state)
    directory = os.path.dirname(path_prefix)
    if directory:
        os.makedirs(directory, exist_ok=True)
    weights = path_prefix + ".safetensors"
    with open(path_prefix + ".yaml", "w") as f:
        f.write(model_text(model, module, name, outputs, os.path.basename(weights)))
    write_safetensors(weights, state, {"format": "pt", "generator": "seqc tools/export_torch.py",
                                       "torch": torch.__version__, "module": type(module).__name__})
    return outputs


# ---------------------------------------------------------------------------
# Command line


def parse_input(text):
    name, eq, typ = text.partition("=")
    if not eq or not name:
        raise argparse.ArgumentTypeError("expected NAME=TYPE, e.g. x=f32[T,B,8], got '%s'" % text)
    return name.strip(), typ.strip()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="export_torch.py", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("module", metavar="MODULE.pt", help="a whole module saved with torch.save(module, path)")
    ap.add_argument("--name", required=True, help="the model's name (a C identifier)")
    ap.add_argument("--input", action="append", type=parse_input, required=True, metavar="NAME=TYPE",
                    help="an input and its seqc type, in forward's argument order (repeat for each)")
    ap.add_argument("-o", dest="prefix", required=True, metavar="PREFIX",
                    help="writes PREFIX.yaml and PREFIX.safetensors")
    ap.add_argument("--batch-first", choices=("yes", "no"),
                    help="the inputs' layout; every layer with batch_first must agree (default: each layer's own)")
    args = ap.parse_args(argv)
    inputs = {}
    for n, t in args.input:
        if n in inputs:
            ap.error("input '%s' given twice" % n)
        inputs[n] = t
    try:
        module = torch.load(args.module, map_location="cpu")
    except Exception as e:  # unpickling raises anything: a missing class, a truncated file, ...
        print("export_torch: cannot load %s: %s" % (args.module, e), file=sys.stderr)
        return 1
    if not isinstance(module, nn.Module):
        print("export_torch: %s holds an object of type %s, not a module: save the whole module with "
              "torch.save(module, path) (a state_dict alone does not say which layers it holds)"
              % (args.module, type(module).__name__), file=sys.stderr)
        return 1
    bf = None if args.batch_first is None else args.batch_first == "yes"
    try:
        outputs = export(module, args.name, inputs, args.prefix, bf)
    except ExportError as e:
        print("export_torch: %s: %s" % (args.module, e), file=sys.stderr)
        return 1
    print("wrote %s.yaml and %s.safetensors; outputs: %s" % (args.prefix, args.prefix, ", ".join(outputs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
