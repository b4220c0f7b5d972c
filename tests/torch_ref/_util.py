"""Helpers shared by the zoo's reference modules (tests/torch/zoo.py skips
files whose name starts with `_`)."""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "torch"))
from parity import init_recurrent, random_lengths  # noqa: E402  (one implementation)

__all__ = ["gen", "init_linear", "init_recurrent", "randint", "randn", "random_lengths", "uniform_"]


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(seed, *shape):
    return torch.randn(*shape, generator=gen(seed), dtype=torch.float32)


def randint(seed, high, *shape, dtype=torch.int64):
    return torch.randint(0, high, shape, generator=gen(seed)).to(dtype)


def uniform_(t, a):
    """U(-a, a) in place (the caller seeds torch)."""
    with torch.no_grad():
        t.uniform_(-a, a)


def init_linear(mod):
    """nn.Linear/Conv1d weights U(+-sqrt(3/fan_in)) (unit-variance outputs
    for unit-variance inputs, so the next layer sees its whole range) and
    biases U(+-0.5)."""
    for n, p in mod.named_parameters():
        if n.endswith("bias"):
            uniform_(p, 0.5)
        else:
            uniform_(p, math.sqrt(3.0 / p[0].numel()))
