"""Compiled models: what ``fter_tvm.compile`` returns."""

from __future__ import annotations

import os

import numpy as np
import tvm
from tvm import relax


def as_numpy(x, shape, dtype="float32") -> np.ndarray:
    """Accept numpy arrays or torch tensors shaped like the example input."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.ascontiguousarray(np.asarray(x, dtype=dtype))
    if list(arr.shape) != list(shape):
        raise ValueError(f"input shape {list(arr.shape)} differs from the compiled shape {list(shape)}")
    return arr


class Artifact:
    """Common surface: ``run``, ``report``, ``input_shape``; targets add their own."""

    target: str = ""

    def __init__(self, fused_mod: tvm.IRModule, report: dict, input_shape):
        self.fused_mod = fused_mod
        self.report = report
        self.input_shape = list(input_shape)

    def run(self, x) -> np.ndarray:
        raise NotImplementedError


class X86Artifact(Artifact):
    """LLVM build of the fused module, executed by TVM's Relax VM on ``num_threads`` threads."""

    target = "x86"

    def __init__(self, fused_mod, report, input_shape, executable, num_threads: int = 2):
        super().__init__(fused_mod, report, input_shape)
        self.executable = executable
        use_threads(num_threads)
        self._vm = relax.VirtualMachine(executable, tvm.cpu())

    def run(self, x) -> np.ndarray:
        """Logits for one input (numpy array or torch tensor shaped like the example input)."""
        out = self._vm["main"](tvm.runtime.tensor(as_numpy(x, self.input_shape)))
        while not hasattr(out, "numpy"):    # unwrap (logits,) tuples
            out = out[0]
        return out.numpy()


def use_threads(n: int) -> None:
    """Size TVM's CPU thread pool for ``n`` threads (process-wide).

    The pool is created on the first parallel kernel with ``TVM_NUM_THREADS`` workers, else half
    the logical CPUs (TVM assumes hyper-threading; on this 2-vCPU VM that is 1) and can only shrink
    afterwards, so the variable is set before that unless the user set it.
    """
    os.environ.setdefault("TVM_NUM_THREADS", str(n))
    tvm.get_global_func("runtime.config_threadpool")(1, n)
