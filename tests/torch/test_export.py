#!/usr/bin/python3
"""Tests of the PyTorch bridge, tools/export_torch.py, against PyTorch 1.13.

    /usr/bin/python3 tests/torch/test_export.py --seqc build/seqc [--work DIR] [-k NAME] [-v]

Each case builds a torch module with a fixed seed, exports it (through
export(), or through the command line from a module saved with torch.save),
checks that the safetensors file holds exactly the module's state_dict
(names, dtypes, shapes, bytes) and that the YAML names the module class and
the torch version, runs the model with `seqc run` (JIT) on random inputs and
compares every output with the module's, with the tolerances of
tests/torch/parity.py. Negative cases check that unsupported modules are
refused with a message naming the module type and its path, and that nothing
is written then. One line per case; the last line is
`torch export: N passed, M failed`; the exit status is 0 only when all pass.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
import parity  # noqa: E402  (the parity harness: tolerances, comparison, raw files, running tools)
import export_torch  # noqa: E402

EXPORTER = os.path.join(REPO, "tools", "export_torch.py")


class Case:
    """A module, its inputs {name: (seqc type, tensor)} in forward order, and
    the tolerance family; `cli` exports through torch.save and the command line."""

    def __init__(self, name, family, module, inputs, dims, cli=False, reference=None):
        self.name, self.family, self.module, self.inputs, self.dims = name, family, module.eval(), inputs, dims
        self.cli = cli
        self.reference = reference or self.module  # computes the expected outputs

    def expected(self):
        args = [t for _, t in self.inputs.values()]
        if isinstance(self.module, nn.MultiheadAttention) and len(args) == 1:
            args *= 3  # self-attention: query, key and value are x
        with torch.no_grad():
            out = self.reference(*args)
        if isinstance(self.module, nn.LSTM):
            return [out[0], out[1][0], out[1][1]]
        if isinstance(self.module, (nn.RNN, nn.GRU)):
            return list(out)
        if isinstance(self.module, nn.MultiheadAttention):
            return [out[0]]
        return [out]


# ---------------------------------------------------------------------------
# Modules


def randomize(module):
    """Biases and norm weights away from their defaults (zeros, ones), which
    would hide a misplaced bias or norm; recurrent layers as in parity.py."""
    for m in module.modules():
        if isinstance(m, (nn.RNN, nn.GRU, nn.LSTM)):
            parity.init_recurrent(m)
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-1, 1)
        else:
            for n, p in m.named_parameters(recurse=False):
                if "bias" in n:
                    parity.uniform_(p, 0.5)
    return module


def seq_input(bf, T, B, E):
    x = parity.randn(B, T, E) if bf else parity.randn(T, B, E)
    return ("f32[B, T, %d]" % E if bf else "f32[T, B, %d]" % E), x


def recurrent_case(cls, bf=False, h0=False, T=7, B=3, I=8, H=16, **kw):
    torch.manual_seed(1)
    mod = randomize(cls(I, H, batch_first=bf, **kw))
    D, layers = (2 if kw.get("bidirectional") else 1), kw.get("num_layers", 1)
    Hout = kw.get("proj_size") or H
    inputs = {"x": seq_input(bf, T, B, I)}
    opts = ",".join("%s=%s" % kv for kv in sorted(kw.items())) + (",bf" if bf else "") + (",h0" if h0 else "")
    ref = None
    if h0:
        inputs["h0"] = ("f32[%d, B, %d]" % (D * layers, Hout), parity.randn(D * layers, B, Hout))
        if cls is nn.LSTM:
            inputs["c0"] = ("f32[%d, B, %d]" % (D * layers, H), parity.randn(D * layers, B, H))

            def ref(x, h, c):  # nn.LSTM takes its state as a tuple
                return mod(x, (h, c))
    return Case("%s(%s)" % (cls.__name__, opts.strip(",")), "recurrent", mod, inputs, {"T": T, "B": B},
                reference=ref)


def linear_case(dtype=torch.float32):
    """nn.Linear; f16 and bf16 weights widen exactly at open, so seqc (f32)
    matches the same module in f32."""
    torch.manual_seed(2)
    mod = randomize(nn.Linear(12, 5)).to(dtype)
    ref = export_torch_copy(mod).float().eval()
    name = "Linear" + ("" if dtype == torch.float32 else "(%s weights)" % str(dtype)[6:])
    return Case(name, "linear", mod, {"x": ("f32[B, T, 12]", parity.randn(3, 7, 12))}, {"T": 7, "B": 3},
                reference=ref)


def export_torch_copy(mod):
    copy = type(mod)(mod.in_features, mod.out_features)
    copy.load_state_dict({k: v.float() for k, v in mod.state_dict().items()})
    return copy


def ids_input(T, B, num, bf=True):
    g = torch.Generator().manual_seed(5)
    shape = (B, T) if bf else (T, B)
    return ("i64[B, T]" if bf else "i64[T, B]"), torch.randint(0, num, shape, generator=g)


def cases():
    c = [
        recurrent_case(nn.RNN),
        recurrent_case(nn.RNN, nonlinearity="relu", num_layers=2, bidirectional=True, bf=True, h0=True),
        recurrent_case(nn.GRU, num_layers=2, bidirectional=True),
        recurrent_case(nn.GRU, bias=False, bf=True, h0=True),
        recurrent_case(nn.LSTM, proj_size=4),
        recurrent_case(nn.LSTM, num_layers=2, bidirectional=True, bf=True, h0=True),
        linear_case(),
        linear_case(torch.bfloat16),
        linear_case(torch.float16),
    ]
    torch.manual_seed(3)
    c.append(Case("Embedding(padding_idx=0)", "exact", nn.Embedding(20, 6, padding_idx=0),
                  {"ids": ids_input(7, 3, 20, bf=False)}, {"T": 7, "B": 3}))
    c.append(Case("LayerNorm", "norm", randomize(nn.LayerNorm(16, eps=1e-6)),
                  {"x": ("f32[B, T, 16]", parity.randn(3, 7, 16) * 3 + 2)}, {"T": 7, "B": 3}))
    torch.manual_seed(4)
    c.append(Case("Sequential(Embedding, Linear, ReLU, LayerNorm)", "norm",
                  randomize(nn.Sequential(nn.Embedding(20, 8), nn.Linear(8, 16), nn.ReLU(), nn.LayerNorm(16))),
                  {"ids": ids_input(7, 3, 20)}, {"T": 7, "B": 3}))
    c.append(Case("Sequential(Linear, GELU, Dropout, Linear)", "linear",
                  randomize(nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Dropout(0.3), nn.Linear(16, 4))),
                  {"x": ("f32[B, 8]", parity.randn(5, 8))}, {"B": 5}))
    c.append(Case("Sequential(Linear, Sequential(Sigmoid, Linear), SiLU, Tanh, Linear, GELU(tanh))", "linear",
                  randomize(nn.Sequential(nn.Linear(8, 16), nn.Sequential(nn.Sigmoid(), nn.Linear(16, 16)), nn.SiLU(),
                                          nn.Tanh(), nn.Linear(16, 16), nn.GELU(approximate="tanh"))),
                  {"x": ("f32[T, B, 8]", parity.randn(7, 3, 8))}, {"T": 7, "B": 3}))
    c.append(Case("Sequential(Conv1d(padding=same, groups=2), ReLU, Conv1d(stride=2))", "linear",
                  randomize(nn.Sequential(nn.Conv1d(6, 8, 3, padding="same", groups=2), nn.ReLU(),
                                          nn.Conv1d(8, 4, 5, stride=2, padding=1))),
                  {"x": ("f32[B, 6, T]", parity.randn(3, 6, 11))}, {"T": 11, "B": 3}))
    c.append(Case("TransformerEncoder(2 layers, norm)", "attention",
                  randomize(nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1), 2,
                                                  norm=nn.LayerNorm(16))),
                  {"x": seq_input(False, 7, 3, 16)}, {"T": 7, "B": 3}))
    c.append(Case("Sequential(Embedding, TransformerEncoderLayer(batch_first, norm_first, gelu))", "attention",
                  randomize(nn.Sequential(nn.Embedding(20, 16), nn.TransformerEncoderLayer(
                      16, 4, 32, activation="gelu", batch_first=True, norm_first=True))),
                  {"ids": ids_input(7, 3, 20)}, {"T": 7, "B": 3}))
    c.append(Case("TransformerDecoderLayer", "attention", randomize(nn.TransformerDecoderLayer(16, 4, 32)),
                  {"x": seq_input(False, 7, 3, 16), "memory": ("f32[S, B, 16]", parity.randn(5, 3, 16))},
                  {"T": 7, "S": 5, "B": 3}))
    c.append(Case("MultiheadAttention(self)", "attention", randomize(nn.MultiheadAttention(16, 4)),
                  {"x": seq_input(False, 7, 3, 16)}, {"T": 7, "B": 3}))
    c.append(Case("MultiheadAttention(query, key, value; kdim, vdim, batch_first)", "attention",
                  randomize(nn.MultiheadAttention(16, 2, kdim=12, vdim=10, batch_first=True)),
                  {"q": seq_input(True, 7, 3, 16), "k": ("f32[B, S, 12]", parity.randn(3, 5, 12)),
                   "v": ("f32[B, S, 10]", parity.randn(3, 5, 10))}, {"T": 7, "S": 5, "B": 3}))
    c.append(Case("GRU saved with torch.save, exported by the command line", "recurrent",
                  randomize(nn.GRU(8, 16, num_layers=2)), {"x": seq_input(False, 7, 3, 8)}, {"T": 7, "B": 3},
                  cli=True))
    return c


# ---------------------------------------------------------------------------
# Checks


def read_safetensors(path):
    """{name: (dtype, shape, bytes)} of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n:]
    return {k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}


def same_as_state_dict(path, module):
    """None when the file holds exactly module.state_dict(), else what differs."""
    stored = read_safetensors(path)
    state = module.state_dict()
    if set(stored) != set(state):
        return "tensors %s, state_dict %s" % (sorted(stored), sorted(state))
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    for k, t in state.items():
        t = t.detach().contiguous()
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        if stored[k] != (names[t.dtype], list(t.shape), raw):
            return "tensor '%s' differs from the state_dict's" % k
    return None


def export_case(case, work, prefix):
    """Exports the case's module; returns the output names."""
    types = {n: ty for n, (ty, _) in case.inputs.items()}
    if not case.cli:
        return export_torch.export(case.module, "exported", types, prefix)
    saved = os.path.join(work, "module.pt")
    torch.save(case.module, saved)
    cmd = [sys.executable, EXPORTER, saved, "--name", "exported", "-o", prefix]
    for n, ty in types.items():
        cmd += ["--input", "%s=%s" % (n, ty.replace(" ", ""))]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("export_torch.py exited %d: %s" % (p.returncode, parity.first_error(p.stderr)))
    return p.stdout.strip().rsplit("outputs: ", 1)[1].split(", ")


def run_case(case, seqc, work):
    """(line, passed) for one export + run + comparison."""
    d = os.path.join(work, parity.c_name(case.name))
    os.makedirs(d, exist_ok=True)
    prefix = os.path.join(d, "m")
    try:
        outputs = export_case(case, d, prefix)
    except (export_torch.ExportError, RuntimeError) as e:
        return "FAIL %s: export: %s" % (case.name, e), False
    problem = same_as_state_dict(prefix + ".safetensors", case.module)
    with open(prefix + ".yaml") as f:
        first = f.readline()
    want = "torch.nn.%s (torch %s)" % (type(case.module).__name__, torch.__version__)
    if not problem and want not in first:
        problem = "the YAML header does not name %s: %s" % (want, first.strip())
    if problem:
        return "FAIL %s: %s" % (case.name, problem), False
    expected = case.expected()
    if len(expected) != len(outputs):
        return "FAIL %s: outputs %s, torch gives %d" % (case.name, outputs, len(expected)), False
    cmd = [seqc, "run", prefix + ".yaml", "--weights", prefix + ".safetensors"]
    cmd += [a for s, v in sorted(case.dims.items()) for a in ("--dim", "%s=%d" % (s, v))]
    for n, (_, t) in case.inputs.items():
        t.contiguous().numpy().tofile(os.path.join(d, n + ".bin"))
        cmd += ["--input", "%s=%s" % (n, os.path.join(d, n + ".bin"))]
    cmd += [a for o in outputs for a in ("--output", "%s=%s" % (o, os.path.join(d, o + ".jit")))]
    ok, msg = parity.run_tool("seqc run", cmd)
    if not ok:
        return "FAIL %s: %s" % (case.name, msg), False
    texts, all_ok = [], True
    for o, exp in zip(outputs, expected):
        got = parity.read_raw(os.path.join(d, o + ".jit"), exp.float())
        ok, a, r, bad = parity.compare(got, exp.float(), case.family)
        texts.append("%s abs %.1e rel %.1e%s" % (o, a, r, "" if ok else " (over at %s)" % (list(bad),)))
        all_ok &= ok
    return "%s %s: %s" % ("ok  " if all_ok else "FAIL", case.name, ", ".join(texts)), all_ok


# ---------------------------------------------------------------------------
# Refusals


def refused(name, module, inputs, wants, work):
    """The export must raise ExportError naming each of `wants` and write nothing."""
    prefix = os.path.join(work, "refused", parity.c_name(name))
    try:
        export_torch.export(module, "m", inputs, prefix)
    except export_torch.ExportError as e:
        msg = str(e)
        missing = [w for w in wants if w not in msg]
        written = [p for p in (prefix + ".yaml", prefix + ".safetensors") if os.path.exists(p)]
        if missing or written:
            return "FAIL refuse %s: %s%s" % (name, "lacks %s: " % missing if missing else "wrote %s: " % written,
                                             msg), False
        return "ok   refuse %s: %s" % (name, msg), True
    return "FAIL refuse %s: exported, but should have been refused naming %s" % (name, ", ".join(wants)), False


def refused_cli(name, obj, wants, work):
    """The command line must exit 1 with a message naming each of `wants`."""
    saved = os.path.join(work, "refused", parity.c_name(name) + ".pt")
    os.makedirs(os.path.dirname(saved), exist_ok=True)
    torch.save(obj, saved)
    p = subprocess.run([sys.executable, EXPORTER, saved, "--name", "m", "--input", "x=f32[B,8]",
                        "-o", saved[:-3]], capture_output=True, text=True)
    missing = [w for w in wants if w not in p.stderr]
    if p.returncode != 1 or missing:
        return "FAIL refuse %s: exit %d, message %r" % (name, p.returncode, p.stderr.strip()), False
    return "ok   refuse %s: %s" % (name, p.stderr.strip()), True


class Scaled(nn.Linear):
    """A subclass whose forward differs from nn.Linear's."""

    def forward(self, x):
        return 2 * super().forward(x)


def refusals(work):
    x8 = {"x": "f32[B, 8]"}
    lstm_in_seq = nn.Sequential(nn.Linear(8, 8), nn.LSTM(8, 8))
    hooked = nn.Linear(8, 8)
    hooked.register_forward_hook(lambda m, i, o: o * 2)
    extra = nn.Sequential(nn.Linear(8, 8))
    extra.register_buffer("scale", torch.ones(1))
    return [
        refused("Conv2d in a Sequential", nn.Sequential(nn.Linear(8, 8), nn.Sequential(nn.ReLU(), nn.Conv2d(1, 1, 3))),
                x8, ["nn.Conv2d", "'1.1'"], work),
        refused("LayerNorm over two dims", nn.Sequential(nn.LayerNorm((4, 8))), {"x": "f32[B, 4, 8]"},
                ["nn.LayerNorm", "'0'", "(4, 8)", "last dim"], work),
        refused("LSTM in a Sequential", lstm_in_seq, x8, ["nn.LSTM", "'1'", "tuple"], work),
        refused("a subclass of Linear", nn.Sequential(Scaled(8, 8)), x8, ["Scaled", "'0'", "subclass"], work),
        refused("a forward hook", hooked, x8, ["nn.Linear", "top level", "hook"], work),
        refused("an extra buffer", extra, x8, ["'scale'"], work),
        refused("Embedding with max_norm", nn.Embedding(10, 4, max_norm=1.0), {"ids": "i64[B]"},
                ["nn.Embedding", "max_norm"], work),
        refused("MultiheadAttention with add_bias_kv", nn.MultiheadAttention(8, 2, add_bias_kv=True),
                {"x": "f32[T, B, 8]"}, ["nn.MultiheadAttention", "add_bias_kv"], work),
        refused("f32 input to an Embedding", nn.Sequential(nn.Embedding(10, 8)), x8,
                ["nn.Embedding", "'0'", "f32"], work),
        batch_first_refusal(work),
        refused("a bad input type", nn.Linear(8, 8), {"x": "float[B, 8]"}, ["'x'", "float[B, 8]"], work),
        refused_cli("Conv2d by the command line", nn.Conv2d(8, 8, 3), ["nn.Conv2d", "top level"], work),
        refused("Conv1d with circular padding", nn.Conv1d(8, 8, 3, padding=1, padding_mode="circular"),
                {"x": "f32[B, 8, T]"}, ["nn.Conv1d", "circular"], work),
        refused_cli("a state_dict by the command line", nn.Linear(8, 8).state_dict(),
                    ["OrderedDict", "torch.save(module"], work),
    ]


def batch_first_refusal(work):
    prefix = os.path.join(work, "refused", "batch_first")
    try:
        export_torch.export(nn.GRU(8, 8), "m", {"x": "f32[B, T, 8]"}, prefix, batch_first=True)
    except export_torch.ExportError as e:
        ok = "nn.GRU" in str(e) and "batch_first" in str(e)
        return "%s refuse batch_first=True for a GRU with batch_first=False: %s" % ("ok  " if ok else "FAIL", e), ok
    return "FAIL refuse batch_first=True for a GRU with batch_first=False: exported", False


# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seqc", default=os.path.join(REPO, "build", "seqc"), help="the seqc binary (build/seqc)")
    ap.add_argument("--work", help="directory for models, weights and outputs (default: a temporary one, removed)")
    ap.add_argument("-k", dest="filter", help="run only the cases whose name contains this")
    ap.add_argument("-j", dest="jobs", type=int, default=os.cpu_count() or 1, help="cases run in parallel")
    args = ap.parse_args()
    seqc = os.path.abspath(args.seqc)
    if not os.access(seqc, os.X_OK):
        sys.exit("torch export: %s is not an executable (build it with make)" % seqc)
    torch.set_num_threads(1)
    work = args.work or tempfile.mkdtemp(prefix="seqc-export-")
    os.makedirs(os.path.join(work, "refused"), exist_ok=True)
    results = []
    try:
        todo = [c for c in cases() if not args.filter or args.filter in c.name]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for line, ok in pool.map(lambda c: run_case(c, seqc, work), todo):
                print(line, flush=True)
                results.append(ok)
        for line, ok in refusals(work):
            if not args.filter or args.filter in line.split(": ")[0]:
                print(line, flush=True)
                results.append(ok)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    passed = sum(results)
    print("torch export: %d passed, %d failed" % (passed, len(results) - passed))
    return 0 if results and passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
