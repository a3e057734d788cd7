"""The trained demo model (digits) through both targets: accuracy and agreement on the test split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fter_tvm as fc
from fter_tvm.data import digits_split
from fter_tvm.models import load_demo_model


@pytest.fixture(scope="module")
def demo():
    model = load_demo_model()
    _, _, x_test, y_test = digits_split()
    with torch.no_grad():
        ref = model(x_test).numpy()
    return model, x_test, y_test.numpy(), ref


def _check(name, got, ref, y):
    agree = float(np.mean(got.argmax(1) == ref.argmax(1)))
    acc_ref, acc_got = float(np.mean(ref.argmax(1) == y)), float(np.mean(got.argmax(1) == y))
    print(f"{name}: top-1 agreement {agree:.4f} on {len(y)}, accuracy {acc_got:.4f} "
          f"(PyTorch {acc_ref:.4f}), max |dlogit| {np.abs(got - ref).max():.2e}")
    assert agree >= 0.99
    assert abs(acc_got - acc_ref) <= 0.005


def test_digits_x86(demo):
    model, x, y, ref = demo
    art = fc.compile(model, "x86", (x[:1],))
    got = np.concatenate([art.run(x[i:i + 1]) for i in range(len(x))])
    _check("digits x86", got, ref, y)


@pytest.mark.cc
@pytest.mark.xtensa
def test_digits_esp32s3_host_and_xtensa(demo):
    model, x, y, ref = demo
    art = fc.compile(model, "esp32s3", (x[:1],))
    got = np.concatenate([art.run(x[i:i + 1]) for i in range(len(x))])
    _check("digits esp32s3 host-sim", got, ref, y)
    instructions = []
    for i in range(16):
        y_sim, stats = art.simulate(x[i:i + 1])
        assert y_sim.tobytes() == got[i:i + 1].tobytes(), f"input {i}: Xtensa differs from host"
        instructions.append(stats["instructions"])
    macs = art.report["macs"]
    print(f"digits esp32s3 lx106: {np.mean(instructions):.0f} instructions/inference, "
          f"{np.mean(instructions) / macs:.2f} per MAC ({macs} MACs), arena "
          f"{art.report['arena_bytes']} B, workspace {art.report['workspace_bytes']} B")
