"""The workloads of `make bench` (issue 8, docs/performance.md).

Each workload builds its torch module and inputs from a fixed seed, so the
orchestrator (bench.py, which exports the module for seqc and writes the
inputs) and every PyTorch timing process (torch_worker.py) hold the same
weights and inputs; bench.py checks seqc's outputs against PyTorch's before
timing anything. FLOPs and weight bytes are counted analytically from the
module's parameter shapes (what is counted: docs/performance.md).
"""

import torch
import torch.nn as nn

SEED = 8  # the number; any fixed value


class Workload:
    """One benchmark row: a module (None for a bare GEMM), its inputs and
    the analytic counts of its forward.

    make():     (module or None, [(input name, tensor)]) from the fixed seed
    types:      {input name: seqc type} for tools/export_torch.py
    dims:       {symbol: value} for so_timer
    flops:      multiply-adds of the forward x 2
    step_bytes: bytes of weights every sequential step must read
    steps:      sequential steps per forward (T for a recurrence, else 1)
    once_bytes: bytes of weights (or operands) read once per forward
    what:       how the roofline line names step_bytes
    """

    def __init__(self, key, title, name, make, types, dims, batch_first=None):
        self.key, self.title, self.name = key, title, name
        self.make, self.types, self.dims, self.batch_first = make, types, dims, batch_first
        self.flops = self.step_bytes = self.once_bytes = 0
        self.steps = 1
        self.what = ""


def seeded(fn):
    """fn() under torch.manual_seed(SEED), in eval mode."""
    def make():
        torch.manual_seed(SEED)
        module, inputs = fn()
        if module is not None:
            module.eval()
        return module, inputs
    return make


def recurrent(key, cls, args, kwargs, B, T):
    I, H = args
    title = "nn.%s(%s), batch %d, T %d" % (cls.__name__, ", ".join(
        [str(a) for a in args] + ["%s=%s" % kv for kv in kwargs.items()]), B, T)
    w = Workload(key, title, "%s_%s" % (key.lower(), cls.__name__.lower()),
                 seeded(lambda: (cls(I, H, **kwargs), [("x", torch.randn(T, B, I))])),
                 {"x": "f32[T, B, %d]" % I}, {"T": T, "B": B})
    # FLOPs: every step multiplies x_t by each W_ih and h by each W_hh, for
    # every batch row. Bytes: the W_hh of every layer and direction are read
    # at every step (a step needs the previous one's h); the input weights
    # can be applied to all steps at once, so they count once per forward.
    mod, _ = w.make()
    for name, p in mod.named_parameters():
        if name.startswith("weight_"):
            w.flops += 2 * T * B * p.numel()
        if name.startswith("weight_hh"):
            w.step_bytes += 4 * p.numel()
        else:
            w.once_bytes += 4 * p.numel()
    w.steps, w.what = T, "recurrent weights"
    return w


def transformer(key, E, heads, ff, layers, B, T):
    def make():
        layer = nn.TransformerEncoderLayer(E, heads, ff, dropout=0.0, batch_first=True)
        return nn.TransformerEncoder(layer, layers), [("x", torch.randn(B, T, E))]
    title = "%d x nn.TransformerEncoderLayer(%d, %d, %d, dropout=0, batch_first=True), batch %d, T %d" % (
        layers, E, heads, ff, B, T)
    w = Workload(key, title, "%s_encoder" % key.lower(), seeded(make), {"x": "f32[B, T, %d]" % E},
                 {"B": B, "T": T}, batch_first=True)
    # FLOPs: every 2-D weight (in_proj, out_proj, linear1, linear2) times
    # every token, plus attention's scores q k^T and its weighted sum p v
    # (T x T x E multiply-adds each, over all heads). Bytes: every weight
    # once per forward.
    mod, _ = w.make()
    for p in mod.parameters():
        if p.dim() == 2:
            w.flops += 2 * B * T * p.numel()
        w.once_bytes += 4 * p.numel()
    w.flops += layers * 2 * 2 * B * T * T * E
    w.step_bytes, w.steps, w.what = w.once_bytes, 1, "weights"
    return w


def gemm(n):
    w = Workload("G1-%d" % n, "GEMM %d x %d x %d, c = matmul(a, b), both operands inputs" % (n, n, n), "g1_gemm",
                 seeded(lambda: (None, [("a", torch.randn(n, n)), ("b", torch.randn(n, n))])),
                 {"a": "f32[M, K]", "b": "f32[K, N]"}, {"M": n, "K": n, "N": n})
    w.flops = 2 * n ** 3
    w.step_bytes = w.once_bytes = 3 * 4 * n * n
    w.steps, w.what = 1, "operands a, b, c"
    return w


def gemm_yaml(name):
    """The G1 model: both operands are inputs, so nothing is packed at open
    (like cblas_sgemm, which also gets its sizes at run time)."""
    return ("# make bench, workload G1: a plain GEMM (tools/bench/workloads.py)\n"
            "model: %s\ninputs:\n  a: f32[M, K]\n  b: f32[K, N]\ngraph:\n  - c = matmul(a, b)\n"
            "outputs: [c]\n" % name)


def torch_forward(w, module, inputs):
    """The workload's forward in torch: a flat list of output tensors, in the
    order of the exported model's outputs (y, hn[, cn] for recurrences)."""
    args = [t for _, t in inputs]
    if module is None:
        return [torch.matmul(*args)]
    out = module(*args)
    if isinstance(out, torch.Tensor):
        return [out]
    y, state = out
    return [y] + (list(state) if isinstance(state, tuple) else [state])


ALL = [
    recurrent("B1", nn.LSTM, (64, 256), {}, B=1, T=1024),
    recurrent("B2", nn.LSTM, (256, 512), {"num_layers": 2}, B=16, T=128),
    recurrent("B3", nn.GRU, (128, 256), {"bidirectional": True}, B=8, T=256),
    transformer("B4", 256, 4, 1024, 2, B=1, T=512),
    recurrent("B8", nn.RNN, (32, 64), {}, B=1, T=16384),
    gemm(512),
    gemm(2048),
]
