"""FoldConstantNumpy: constant weight math folded in NumPy, the same values TVM's FoldConstant gives."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.script import ir as I
from tvm.script import relax as R

from relay_passes import FoldConstantNumpy


def _ternary_weight_module(w: np.ndarray):
    """absmean ternarization of a constant, as a ternarized model exports it, feeding a matmul."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((2, w.shape[1]), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            c = relax.const(w)
            alpha = bb.emit(relax.op.clip(relax.op.mean(relax.op.abs(c), axis=[1], keepdims=True),
                                          1e-5, 3.4e38))
            t = bb.emit(relax.op.clip(relax.op.round(relax.op.divide(c, alpha)), -1.0, 1.0))
            wt = bb.emit(relax.op.permute_dims(relax.op.multiply(t, alpha)))
            y = bb.emit_output(relax.op.matmul(x, wt))
        bb.emit_func_output(y)
    return bb.get()


def _matmul_weight(mod) -> np.ndarray:
    """The matmul's weight, which must be a constant (through variables bound to one)."""
    (block,) = mod["main"].body.blocks
    values = {b.var: b.value for b in block.bindings}
    call = block.bindings[-1].value
    assert call.op.name == "relax.matmul"
    w = call.args[1]
    while isinstance(w, relax.Var):
        w = values[w]
    return w.value.numpy()


def test_folds_ternarized_weight_like_tvm():
    w = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    mod = _ternary_weight_module(w)
    ours = FoldConstantNumpy()(mod)
    calls = [b.value.op.name for b in ours["main"].body.blocks[0].bindings
             if isinstance(b.value, relax.Call)]
    assert calls == ["relax.matmul"]                                # the weight math is gone
    theirs = relax.transform.FoldConstant()(mod)
    np.testing.assert_allclose(_matmul_weight(ours), _matmul_weight(theirs), rtol=1e-6)
    alpha = np.maximum(np.abs(w).mean(1, keepdims=True), 1e-5)
    np.testing.assert_allclose(_matmul_weight(ours), (np.clip(np.round(w / alpha), -1, 1) * alpha).T,
                               rtol=1e-6)


def test_no_constants_unchanged():
    @I.ir_module
    class Before:
        @R.function
        def main(x: R.Tensor((4,), "float32"), y: R.Tensor((4,), "float32")):
            with R.dataflow():
                z = R.multiply(R.abs(x), y)
                R.output(z)
            return z

    tvm.ir.assert_structural_equal(FoldConstantNumpy()(Before), Before)
