#!/usr/bin/python3
"""The model zoo (models/NAME.yaml) checked against PyTorch references (tests/torch_ref/NAME.py).

Run with Debian's python3-torch, which imports only from /usr/bin/python3:

    /usr/bin/python3 tests/torch/zoo.py --seqc build/seqc --work /tmp/zoo
    /usr/bin/python3 tests/torch/zoo.py -k lstm -v        # models whose name contains "lstm"

Every module tests/torch_ref/NAME.py (files starting with `_` are helpers)
is the reference of models/NAME.yaml and defines

    MODEL = "NAME"
    reference(seed) -> nn.Module   state_dict keys and shapes = the YAML's params
    inputs(batch, T, seed) -> {YAML input name: tensor}
    forward(module, inputs) -> {YAML output name: tensor}, computed by PyTorch
    CASES = [(batch, T), ...]
    TOL = (atol, rtol)             |seqc - torch| <= atol + rtol * |torch|
    STREAMS = True | False         whether the .so must have `step`

and optionally, for greedy decoding driven step by step (pointer_network):

    feedback(step_outputs, t) -> {input name: tensor}
        the per-step inputs of step t + 1 from the outputs of step t (each
        output with a T axis of length 1, in the .so's layout)
    greedy(module, inputs) -> {name: tensor}
        PyTorch's result of the same loop: every output over the T steps, and
        the per-step inputs that were fed (step 0 comes from `inputs`)

For each model the harness writes the module's state_dict as safetensors
(tools/export_torch.py's writer), builds models/NAME.yaml with `seqc build
-O2` and loads the .so through its descriptor (ctypes, as
examples/generic_run.c does in C). For each case it writes the inputs, runs

  1. `seqc check -O2` (compiled against the reference interpreter, within TOL);
  2. the .so's forward, every output against forward() within TOL;
  3. for STREAMS models (docs/streaming.md, bitwise): step_n(T1) then
     step_n(T - T1) equals forward; the state saved after T1 steps and
     loaded into a new ctx, or copied into one, continues identically; after
     reset, T calls of step equal forward;
  4. with feedback/greedy: after reset, T calls of step, each fed by
     feedback() from the previous step, against greedy() within TOL (fed
     integer inputs exactly); then forward over the fed inputs must equal
     the stepped outputs bitwise.

Each model runs in its own process (a crash in one .so fails that model
only), -j at a time. Each case prints `ok   NAME B=.. T=..: ...` or
`FAIL NAME B=.. T=..: reason`; a model that cannot be built or loaded prints
one FAIL line. The last line is `model zoo: N passed, M failed`; the exit
status is 0 only when nothing failed.
"""

import argparse
import concurrent.futures
import ctypes
import faulthandler
import glob
import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
REF_DIR = os.path.join(REPO, "tests", "torch_ref")
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, REF_DIR)
sys.path.insert(0, HERE)
import export_torch  # noqa: E402  (the safetensors writer)
from parity import run_tool  # noqa: E402  (subprocess with a one-line error)

CHILD_SUMMARY = "zoo model:"  # a child's last line: "zoo model: N passed, M failed"

# ---------------------------------------------------------------------------
# The .so's descriptor (runtime/seqrt_types.h) through ctypes

c_i32p = ctypes.POINTER(ctypes.c_int32)
c_i64p = ctypes.POINTER(ctypes.c_int64)
c_voidpp = ctypes.POINTER(ctypes.c_void_p)


class TensorDesc(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("dim_symbols", c_i32p)]


def fn(res, *args):
    return ctypes.CFUNCTYPE(res, *args)


class EntryPoints(ctypes.Structure):
    _fields_ = [
        ("open", fn(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, c_voidpp)),
        ("open_memory", ctypes.c_void_p),
        ("ctx_new", fn(ctypes.c_int, ctypes.c_void_p, c_i64p, c_voidpp)),
        ("forward", fn(ctypes.c_int, ctypes.c_void_p, c_i64p, c_voidpp, c_voidpp)),
        ("ctx_free", fn(None, ctypes.c_void_p)),
        ("close", fn(None, ctypes.c_void_p)),
        ("last_error", fn(ctypes.c_char_p)),
        ("step_n", fn(ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, c_voidpp, c_voidpp)),
        ("reset", fn(ctypes.c_int, ctypes.c_void_p, c_i64p)),
        ("state_size", fn(ctypes.c_size_t, ctypes.c_void_p)),
        ("state_save", fn(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)),
        ("state_load", fn(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)),
        ("state_copy", fn(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)),
    ]


class ModelDesc(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("fingerprint", ctypes.c_uint64),
        ("n_symbols", ctypes.c_int32), ("symbols", ctypes.POINTER(ctypes.c_char_p)),
        ("n_inputs", ctypes.c_int32), ("inputs", ctypes.POINTER(TensorDesc)),
        ("n_params", ctypes.c_int32), ("params", ctypes.POINTER(TensorDesc)),
        ("arg_order", c_i32p),
        ("n_outputs", ctypes.c_int32), ("outputs", ctypes.POINTER(TensorDesc)),
        ("dims", fn(None, c_i64p, c_i64p)),
        ("n_param_symbols", ctypes.c_int32), ("param_symbols", c_i32p),
        ("n_call_symbols", ctypes.c_int32), ("call_symbols", c_i32p),
        ("entry", ctypes.POINTER(EntryPoints)),
        ("forward", ctypes.c_void_p),
        ("time_symbol", ctypes.c_int32), ("no_step", ctypes.c_char_p), ("step", ctypes.c_void_p),
        ("n_state", ctypes.c_int32), ("state", ctypes.POINTER(TensorDesc)), ("state_dims", ctypes.c_void_p),
    ]


# seqrt dtypes, in their enum order; f16/bf16 are not used by the zoo.
DTYPES = [torch.float32, torch.float64, None, None, torch.int32, torch.int64, torch.bool]
DTYPE_NAMES = ["f32", "f64", "f16", "bf16", "i32", "i64", "bool"]


class SoError(Exception):
    pass


class Tensor:
    """One input or output of the descriptor: name, torch dtype, the symbol
    of each axis (None where the axis is not exactly a symbol) and the T axis."""

    def __init__(self, d, symbols, time_symbol):
        self.name = d.name.decode()
        self.dtype = DTYPES[d.dtype]
        self.dtype_name = DTYPE_NAMES[d.dtype]
        self.rank = d.rank
        self.syms = [symbols[d.dim_symbols[a]] if d.dim_symbols and d.dim_symbols[a] >= 0 else None
                     for a in range(d.rank)]
        self.time_axis = next((a for a in range(d.rank) if d.dim_symbols and d.dim_symbols[a] == time_symbol), None) \
            if time_symbol >= 0 else None


class SharedObject:
    """A seqc .so known only through NAME_descriptor: open, contexts, forward,
    the streaming entry points. Tensors are torch tensors, contiguous."""

    def __init__(self, path, model_name, weights):
        self.lib = ctypes.CDLL(path, mode=os.RTLD_LOCAL | os.RTLD_NOW)
        get = getattr(self.lib, model_name + "_descriptor")
        get.restype = ctypes.POINTER(ModelDesc)
        self.d = get().contents
        self.e = self.d.entry.contents
        self.symbols = [self.d.symbols[i].decode() for i in range(self.d.n_symbols)]
        ts = self.d.time_symbol
        self.inputs = [Tensor(self.d.inputs[i], self.symbols, ts) for i in range(self.d.n_inputs)]
        self.outputs = [Tensor(self.d.outputs[i], self.symbols, ts) for i in range(self.d.n_outputs)]
        self.params = [Tensor(self.d.params[i], self.symbols, ts) for i in range(self.d.n_params)]
        for t in self.inputs + self.outputs:
            if t.dtype is None:
                raise SoError("'%s' is %s, which the harness does not handle (torch tensors of f32, f64, i32, "
                              "i64, bool)" % (t.name, t.dtype_name))
        self.call_symbols = [self.symbols[self.d.call_symbols[i]] for i in range(self.d.n_call_symbols)]
        self.has_step = bool(self.d.step)
        self.no_step = self.d.no_step.decode() if self.d.no_step else None
        self.model = ctypes.c_void_p()
        self.check(self.e.open(weights.encode(), None, ctypes.byref(self.model)), "open")
        self.ctxs = []

    def check(self, rc, what):
        if rc != 0:
            raise SoError("%s: %s" % (what, self.e.last_error().decode(errors="replace")))

    def close(self):
        for c in self.ctxs:
            self.e.ctx_free(c)
        self.ctxs = []
        self.e.close(self.model)

    def symbol_values(self, inputs, state_dict):
        """{symbol: value} from the inputs' and parameters' shapes; each
        symbol must be exactly one axis of some input or parameter, with
        one value."""
        vals = {}
        named = [(t.name, t.syms, inputs[t.name]) for t in self.inputs]
        named += [(t.name, t.syms, state_dict[t.name]) for t in self.params if t.name in state_dict]
        for name, syms, tensor in named:
            for a, s in enumerate(syms):
                if s is not None and vals.setdefault(s, tensor.shape[a]) != tensor.shape[a]:
                    raise SoError("'%s' gives %s = %d, another tensor %d" % (name, s, tensor.shape[a], vals[s]))
        missing = [s for s in self.symbols if s not in vals]
        if missing:
            raise SoError("symbol %s is no axis of any input or parameter" % missing[0])
        return vals

    def shapes(self, vals):
        """(input shapes, output shapes) from the descriptor's dims."""
        syms = (ctypes.c_int64 * max(1, len(self.symbols)))(*[vals[s] for s in self.symbols])
        ranks = [t.rank for t in self.inputs + self.params + self.outputs]
        out = (ctypes.c_int64 * max(1, sum(ranks)))()
        self.d.dims(syms, out)
        shapes, at = [], 0
        for r in ranks:
            shapes.append(tuple(out[at:at + r]))
            at += r
        return shapes[:len(self.inputs)], shapes[len(self.inputs) + len(self.params):]

    def ctx_new(self, vals):
        c = ctypes.c_void_p()
        self.check(self.e.ctx_new(self.model, self.call_array(vals), ctypes.byref(c)), "ctx_new")
        self.ctxs.append(c)
        return c

    def call_array(self, vals, skip_time=False):
        names = [s for s in self.call_symbols if not (skip_time and s == self.symbols[self.d.time_symbol])]
        return (ctypes.c_int64 * max(1, len(names)))(*[vals[s] for s in names])

    def _run(self, fn_, what, first, ins, out_shapes):
        """Calls fn_(first, ins, outs) on contiguous copies; returns the outputs."""
        ins = [t.contiguous() for t in ins]
        outs = [torch.zeros(s, dtype=t.dtype) for s, t in zip(out_shapes, self.outputs)]
        in_arr = (ctypes.c_void_p * max(1, len(ins)))(*[t.data_ptr() for t in ins])
        out_arr = (ctypes.c_void_p * max(1, len(outs)))(*[t.data_ptr() for t in outs])
        self.check(fn_(*first, in_arr, out_arr), what)
        return outs

    def forward(self, ctx, vals, ins):
        _, out_shapes = self.shapes(vals)
        return self._run(self.e.forward, "forward", (ctx, self.call_array(vals)), ins, out_shapes)

    def step_n(self, ctx, vals, n, ins):
        """n steps; ins and results with a T axis of length n."""
        _, out_shapes = self.shapes(dict(vals, **{self.symbols[self.d.time_symbol]: n}))
        return self._run(self.e.step_n, "step_n(%d)" % n, (ctx, n), ins, out_shapes)

    def reset(self, ctx, vals):
        self.check(self.e.reset(ctx, self.call_array(vals, skip_time=True)), "reset")

    def save(self, ctx):
        n = self.e.state_size(ctx)
        buf = ctypes.create_string_buffer(max(1, n))
        self.check(self.e.state_save(ctx, buf, n), "state_save")
        return buf, n

    def load(self, ctx, blob):
        self.check(self.e.state_load(ctx, blob[0], blob[1]), "state_load")

    def copy(self, src, dst):
        self.check(self.e.state_copy(src, dst), "state_copy")


# ---------------------------------------------------------------------------
# Comparison


def max_errors(got, exp):
    """(max abs error, max rel error over |exp| >= 1e-3); NaN anywhere is inf."""
    g, e = got.double(), exp.double()
    err = (g - e).abs()
    err[g == e] = 0.0  # equal infinities
    err[torch.isnan(g) | torch.isnan(e)] = math.inf
    if err.numel() == 0:
        return 0.0, 0.0
    big = e.abs() >= 1e-3
    rel = (err[big] / e.abs()[big]).max().item() if big.any() else 0.0
    return err.max().item(), rel


def within(got, exp, tol):
    """None when every element is within tol, else a description of the first that is not."""
    atol, rtol = tol
    if got.dtype in (torch.int32, torch.int64, torch.bool):
        bad = got != exp
    else:
        g, e = got.double(), exp.double()
        err = (g - e).abs()
        err[g == e] = 0.0
        bad = ~(err <= atol + rtol * e.abs())  # NaN compares false: bad
    if not bad.any():
        return None
    i = tuple(int(k) for k in bad.nonzero()[0])
    return "%s of %s over at %s: got %.9g, expected %.9g" % (int(bad.sum()), got.numel(), list(i),
                                                             got[i].item(), exp[i].item())


def bitwise_equal(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and \
        a.contiguous().numpy().tobytes() == b.contiguous().numpy().tobytes()


class CaseFailure(Exception):
    pass


# ---------------------------------------------------------------------------
# One model (run in a child process)


def load_reference(name):
    path = os.path.join(REF_DIR, name + ".py")
    spec = importlib.util.spec_from_file_location("zoo_ref_" + name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for attr in ("MODEL", "reference", "inputs", "forward", "CASES", "TOL", "STREAMS"):
        if not hasattr(mod, attr):
            raise CaseFailure("%s defines no %s (see the contract in tests/torch/zoo.py)" % (path, attr))
    if mod.MODEL != name:
        raise CaseFailure("%s says MODEL = %r" % (path, mod.MODEL))
    if hasattr(mod, "feedback") != hasattr(mod, "greedy"):
        raise CaseFailure("%s defines one of feedback and greedy without the other" % path)
    bs, ts = [b for b, _ in mod.CASES], [t for _, t in mod.CASES]
    if not (1 in bs and max(bs) > 1 and 1 in ts and any(t > 1 and t % 2 for t in ts) and max(ts) >= 1023):
        raise CaseFailure("%s: CASES %s must include batch 1 and a batch above 1, T = 1, an odd T above 1 and "
                          "a T of 1023 or more" % (path, mod.CASES))
    return mod


def time_slice(t, axis, t0, n):
    return t.narrow(axis, t0, n) if axis is not None else t


def stream_inputs(so, ins, t0, n):
    return [time_slice(x, t.time_axis, t0, n) for x, t in zip(ins, so.inputs)]


def assemble(so, pieces):
    """Per-step outputs of several calls joined along T; others from the last call."""
    out = []
    for k, t in enumerate(so.outputs):
        if t.time_axis is None:
            out.append(pieces[-1][k])
        else:
            out.append(torch.cat([p[k] for p in pieces], dim=t.time_axis))
    return out


def same_as(so, got, want, what):
    for t, g, w in zip(so.outputs, got, want):
        if not bitwise_equal(g, w):
            a, _ = max_errors(g, w)
            raise CaseFailure("%s: output '%s' differs from forward (max abs %.1e; docs/streaming.md promises "
                              "bitwise equality)" % (what, t.name, a))


def check_stream(so, vals, ins, fwd):
    """The streaming contract of docs/streaming.md against forward's outputs."""
    T = vals[so.symbols[so.d.time_symbol]]
    t1 = T // 3 if T > 2 else min(T, 1)
    c = so.ctx_new(vals)
    first = so.step_n(c, vals, t1, stream_inputs(so, ins, 0, t1))
    blob = so.save(c)
    fork = so.ctx_new(vals)
    so.copy(c, fork)
    rest = so.step_n(c, vals, T - t1, stream_inputs(so, ins, t1, T - t1))
    same_as(so, assemble(so, [first, rest]), fwd, "step_n(%d) + step_n(%d)" % (t1, T - t1))
    loaded = so.ctx_new(vals)
    so.load(loaded, blob)
    rest = so.step_n(loaded, vals, T - t1, stream_inputs(so, ins, t1, T - t1))
    same_as(so, assemble(so, [first, rest]), fwd, "state saved after %d steps, loaded" % t1)
    rest = so.step_n(fork, vals, T - t1, stream_inputs(so, ins, t1, T - t1))
    same_as(so, assemble(so, [first, rest]), fwd, "state copied after %d steps" % t1)
    so.reset(c, vals)
    steps = [so.step_n(c, vals, 1, stream_inputs(so, ins, t, 1)) for t in range(T)]
    if T:
        same_as(so, assemble(so, steps), fwd, "%d calls of step" % T)
    return "stream: step_n(%d)+step_n(%d), save/load, copy, %d x step bitwise" % (t1, T - t1, T)


def check_greedy(so, ref, module, vals, ins, inputs):
    """Greedy decoding through step, fed by ref.feedback, against ref.greedy."""
    T = vals[so.symbols[so.d.time_symbol]]
    c = so.ctx_new(vals)
    steps, fed = [], {t.name: [] for t in so.inputs if t.time_axis is not None}
    cur = stream_inputs(so, ins, 0, 1)
    for t in range(T):
        for x, d in zip(cur, so.inputs):
            if d.time_axis is not None:
                fed[d.name].append(x)
        out = so.step_n(c, vals, 1, cur)
        steps.append(out)
        if t + 1 < T:
            new = ref.feedback({d.name: o for d, o in zip(so.outputs, out)}, t)
            if set(new) - set(fed):
                raise CaseFailure("feedback() gives %s; the per-step inputs are %s" % (sorted(new), sorted(fed)))
            cur = stream_inputs(so, ins, t + 1, 1)
            for k, d in enumerate(so.inputs):
                if d.name in new:
                    cur[k] = new[d.name].to(d.dtype).reshape(cur[k].shape)
    got = assemble(so, steps)
    fed = {n: torch.cat(v, dim=next(d.time_axis for d in so.inputs if d.name == n)) for n, v in fed.items()}
    with torch.no_grad():
        want = ref.greedy(module, inputs)
    worst = 0.0
    for name, w in want.items():
        g = fed[name] if name in fed else next((o for d, o in zip(so.outputs, got) if d.name == name), None)
        if g is None:
            raise CaseFailure("greedy() returns '%s', which is neither an output nor a per-step input" % name)
        if g.shape != w.shape:
            raise CaseFailure("greedy: '%s' has shape %s, greedy() %s" % (name, list(g.shape), list(w.shape)))
        bad = within(g, w.to(g.dtype), ref.TOL)
        if bad:
            raise CaseFailure("greedy decoding through step: '%s': %s" % (name, bad))
        if g.dtype.is_floating_point:
            worst = max(worst, max_errors(g, w)[0])
    teacher = [fed.get(d.name, x) for x, d in zip(ins, so.inputs)]
    same_as(so, so.forward(so.ctx_new(vals), vals, teacher), got, "forward over the greedy choices vs step")
    return "greedy: %d steps fed back, abs %.1e, = forward bitwise" % (T, worst)


def run_case(ref, module, state, so, model_path, weights, case_dir, batch, T, seed, seqc, check):
    """One case; returns the text after the label. Raises CaseFailure.
    check: whether to run `seqc check` on it."""
    inputs = ref.inputs(batch, T, seed)
    names = [t.name for t in so.inputs]
    if sorted(inputs) != sorted(names):
        raise CaseFailure("inputs() gives %s, the model takes %s" % (sorted(inputs), names))
    for t in so.inputs:
        if inputs[t.name].dtype != t.dtype:
            raise CaseFailure("input '%s': inputs() gives %s, the model takes %s" %
                              (t.name, inputs[t.name].dtype, t.dtype_name))
    vals = so.symbol_values(inputs, state)
    in_shapes, out_shapes = so.shapes(vals)
    for t, s in zip(so.inputs, in_shapes):
        if tuple(inputs[t.name].shape) != s:
            raise CaseFailure("input '%s' has shape %s, the model wants %s" % (t.name, list(inputs[t.name].shape),
                                                                             list(s)))
    with torch.no_grad():
        expected = ref.forward(module, inputs)
    if sorted(expected) != sorted(t.name for t in so.outputs):
        raise CaseFailure("forward() gives %s, the model outputs %s" % (sorted(expected),
                                                                        [t.name for t in so.outputs]))
    for t, s in zip(so.outputs, out_shapes):
        if tuple(expected[t.name].shape) != s:
            raise CaseFailure("output '%s': torch gives %s, the model %s" % (t.name, list(expected[t.name].shape),
                                                                           list(s)))
    # 1. seqc check: compiled vs the interpreter, on the same files.
    text = ""
    if check:
        os.makedirs(case_dir, exist_ok=True)
        args = [seqc, "check", model_path, "-O2", "--weights", weights,
                "--atol", repr(ref.TOL[0]), "--rtol", repr(ref.TOL[1])]
        for t in so.inputs:
            path = os.path.join(case_dir, t.name + ".bin")
            inputs[t.name].contiguous().numpy().tofile(path)
            args += ["--input", "%s=%s" % (t.name, path)]
        for s in so.call_symbols:
            args += ["--dim", "%s=%d" % (s, vals[s])]
        ok, msg = run_tool("seqc check", args)
        if not ok:
            raise CaseFailure(msg)
        text = "seqc check -O2 ok; "
    # 2. forward through the .so against torch.
    ins = [inputs[t.name] for t in so.inputs]
    fwd = so.forward(so.ctx_new(vals), vals, ins)
    errs = []
    for t, got in zip(so.outputs, fwd):
        exp = expected[t.name].to(t.dtype)
        bad = within(got, exp, ref.TOL)
        if bad:
            raise CaseFailure("forward: output '%s': %s (atol %g, rtol %g)" % (t.name, bad, ref.TOL[0], ref.TOL[1]))
        a, r = max_errors(got, exp)
        errs.append("%s abs %.1e rel %.1e" % (t.name, a, r))
    text += ", ".join(errs)
    # 3, 4. streaming.
    if so.has_step:
        text += "; " + check_stream(so, vals, ins, fwd)
        if hasattr(ref, "greedy"):
            text += "; " + check_greedy(so, ref, module, vals, ins, inputs)
    return text


def run_model(name, seqc, work, verbose):
    """Builds and checks one model; prints its lines and the child summary."""
    passed = failed = 0

    def report(ok, label, text):
        nonlocal passed, failed
        print("%s %s: %s" % ("ok  " if ok else "FAIL", label, text), flush=True)
        passed, failed = passed + ok, failed + (not ok)

    try:
        ref = load_reference(name)
        model_path = os.path.join(REPO, "models", name + ".yaml")
        if not os.path.exists(model_path):
            raise CaseFailure("there is no %s" % model_path)
        mdir = os.path.join(work, name)
        os.makedirs(mdir, exist_ok=True)
        torch.manual_seed(0)
        module = ref.reference(0).eval()
        state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
        weights = os.path.join(mdir, "weights.safetensors")
        export_torch.write_safetensors(weights, state, {"generator": "tests/torch/zoo.py"})
        so_path = os.path.join(mdir, name + ".so")
        start = time.time()
        ok, msg = run_tool("seqc build", [seqc, "build", model_path, "-O2", "-o", so_path])
        build_time = time.time() - start  # compile time is most of the zoo's: shown on the first case
        if not ok:
            raise CaseFailure(msg)
        so = SharedObject(so_path, name, weights)
    except (CaseFailure, SoError) as e:
        report(False, name, str(e))
        return passed, failed
    try:
        if ref.STREAMS and not so.has_step:
            report(False, name, "STREAMS is True, but the .so has no step: %s" % so.no_step)
            return passed, failed
        if not ref.STREAMS and so.has_step:
            report(False, name, "STREAMS is False, but the .so has step (update the reference and the YAML's "
                   "comment)")
            return passed, failed
        # seqc check compiles the model once more (seconds for a few
        # scans at -O2), so it runs on one case: CHECK_CASE, an index into
        # CASES, or the first with a batch above 1.
        check_at = getattr(ref, "CHECK_CASE", next((i for i, c in enumerate(ref.CASES) if c[0] > 1), 0))
        for i, (batch, T) in enumerate(ref.CASES):
            label = "%s B=%d T=%d" % (name, batch, T)
            start = time.time()
            try:
                text = run_case(ref, module, state, so, model_path, weights,
                                os.path.join(mdir, "B%d_T%d" % (batch, T)), batch, T, 100 + i, seqc, i == check_at)
                text += " (%.1f s%s)" % (time.time() - start, "; seqc build %.1f s" % build_time if i == 0 else "")
                if verbose:
                    text += "\n     model: %s, work: %s" % (model_path, mdir)
                report(True, label, text)
            except (CaseFailure, SoError) as e:
                report(False, label, str(e))
            except Exception:  # a bug in the reference module: say where
                report(False, label, traceback.format_exc().strip().replace("\n", "\n     "))
    finally:
        so.close()
    return passed, failed


# ---------------------------------------------------------------------------


def discover(filter_):
    names = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REF_DIR, "*.py"))
                   if not os.path.basename(p).startswith("_"))
    return [n for n in names if not filter_ or filter_ in n]


def run_child(args, name, seqc, work):
    cmd = [sys.executable, os.path.abspath(__file__), "--seqc", seqc, "--work", work, "--model", name]
    if args.v:
        cmd.append("-v")
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_children(args, names, seqc, work):
    """Each model in a child process, args.jobs at a time, its lines printed
    in the order of names. Returns (passed, failed)."""
    passed = failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_child, args, n, seqc, work) for n in names]
        for n, f in zip(names, futures):
            p = f.result()
            summary = None
            for line in p.stdout.splitlines():
                if line.startswith(CHILD_SUMMARY):
                    summary = re.match(r"\S+ \S+ (\d+) passed, (\d+) failed", line)
                else:
                    print(line, flush=True)
            if p.returncode != 0 or not summary:
                how = "was killed by signal %d" % -p.returncode if p.returncode < 0 else \
                    "exited with status %d" % p.returncode
                print("FAIL %s: the model's process %s before it finished (any traceback is above)" % (n, how),
                      flush=True)
                failed += 1
            if summary:
                passed, failed = passed + int(summary.group(1)), failed + int(summary.group(2))
    return passed, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seqc", default=os.path.join(REPO, "build", "seqc"), help="the seqc binary (build/seqc)")
    ap.add_argument("--work", help="directory for weights, inputs and .so files (default: a temporary one, removed)")
    ap.add_argument("-k", dest="filter", help="only the models whose name contains this")
    ap.add_argument("-j", dest="jobs", type=int, default=os.cpu_count() or 1, help="models checked in parallel")
    ap.add_argument("-v", action="store_true", help="print each model's path and work directory")
    ap.add_argument("--model", help=argparse.SUPPRESS)  # internal: check one model in this process
    args = ap.parse_args()
    if sys.byteorder != "little":
        sys.exit("model zoo: raw tensor files are little-endian; this host is not")
    seqc = os.path.abspath(args.seqc)
    if not os.access(seqc, os.X_OK):
        sys.exit("model zoo: %s is not an executable (build it with make)" % seqc)
    torch.set_num_threads(1)
    if args.model:
        faulthandler.enable()  # a crash in the .so prints the Python stack: which case, which call
        os.environ["SEQRT_NUM_THREADS"] = "1"
        try:
            p, f = run_model(args.model, seqc, args.work, args.v)
        except Exception:  # a bug in a reference module: say where
            print("FAIL %s: %s" % (args.model, traceback.format_exc().strip().replace("\n", "\n     ")))
            p, f = 0, 1
        print("%s %d passed, %d failed" % (CHILD_SUMMARY, p, f), flush=True)
        return 0
    start = time.time()
    names = discover(args.filter)
    if not names:
        sys.exit("model zoo: no reference in %s%s" % (REF_DIR, " matches '%s'" % args.filter if args.filter else ""))
    work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="seqc-zoo-")
    os.makedirs(work, exist_ok=True)
    try:
        passed, failed = run_children(args, names, seqc, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print("model zoo: %d passed, %d failed (%.0f s)" % (passed, failed, time.time() - start))
    return 0 if failed == 0 and passed else 1


if __name__ == "__main__":
    sys.exit(main())
