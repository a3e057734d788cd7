"""ONNX import: our FTerViT exported by torch, and the QDQ convention (ternary int8 initializers)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import fter_tvm as fc
from fter_tvm.models.vit import FTerViT, FTerViTConfig
from relay_passes.frontend import ImportError_


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    torch.manual_seed(0)
    model = FTerViT(FTerViTConfig(img_size=16, patch_size=4, in_chans=1, num_classes=10,
                                  embed_dim=32, depth=2, num_heads=2, mlp_ratio=2)).eval()
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    with torch.no_grad():
        torch.onnx.export(model, (torch.randn(1, 1, 16, 16),), str(path), dynamo=False,
                          opset_version=17)
    return model, path


@pytest.mark.parametrize("target", ["x86", pytest.param("esp32s3", marks=pytest.mark.cc)])
def test_our_model_through_onnx(tiny_onnx, target):
    model, path = tiny_onnx
    art = fc.compile(str(path), target)
    fused = art.report["fused"]
    assert (fused["ternary_matmul"], fused["ternary_layernorm"], fused["int8_attention"]) == (10, 5, 2)
    assert fused["unfused"] == []
    g = torch.Generator().manual_seed(2)
    xs = [torch.randn(1, 1, 16, 16, generator=g) for _ in range(16)]
    with torch.no_grad():
        ref = np.concatenate([model(x).numpy() for x in xs])
    got = np.concatenate([art.run(x) for x in xs])
    print(f"ONNX {target}: top-1 {np.mean(ref.argmax(1) == got.argmax(1)):.3f}, "
          f"max |dlogit| {np.abs(ref - got).max():.2e}")
    assert np.mean(ref.argmax(1) == got.argmax(1)) >= 0.9


def _qdq_model(k=24, hidden=40, n=6, tokens=5, seed=0):
    """x -> dynamic per-token absmax int8 fake-quant -> MatMul(DequantizeLinear(int8 W)) + b, twice."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def quant(inp, tag):
        nodes.extend([
            helper.make_node("Abs", [inp], [f"{tag}_abs"]),
            helper.make_node("ReduceMax", [f"{tag}_abs"], [f"{tag}_max"], axes=[-1], keepdims=1),
            helper.make_node("Clip", [f"{tag}_max", "eps"], [f"{tag}_maxc"]),
            helper.make_node("Div", [f"{tag}_maxc", "c127"], [f"{tag}_s"]),
            helper.make_node("Div", [inp, f"{tag}_s"], [f"{tag}_d"]),
            helper.make_node("Round", [f"{tag}_d"], [f"{tag}_r"]),
            helper.make_node("Clip", [f"{tag}_r", "lo", "hi"], [f"{tag}_q"]),
            helper.make_node("Mul", [f"{tag}_q", f"{tag}_s"], [f"{tag}_out"]),
        ])
        return f"{tag}_out"

    def linear(inp, kin, kout, tag):
        codes = rng.integers(-1, 2, (kin, kout)).astype(np.int8)
        inits.extend([numpy_helper.from_array(codes, f"{tag}_w"),
                      numpy_helper.from_array(rng.uniform(0.02, 0.1, kout).astype(np.float32),
                                              f"{tag}_scale"),
                      numpy_helper.from_array(np.zeros(kout, np.int8), f"{tag}_zp"),
                      numpy_helper.from_array(rng.normal(0, 0.1, kout).astype(np.float32), f"{tag}_b")])
        nodes.extend([
            helper.make_node("DequantizeLinear", [f"{tag}_w", f"{tag}_scale", f"{tag}_zp"],
                             [f"{tag}_wf"], axis=1),
            helper.make_node("MatMul", [quant(inp, tag), f"{tag}_wf"], [f"{tag}_mm"]),
            helper.make_node("Add", [f"{tag}_mm", f"{tag}_b"], [f"{tag}_y"]),
        ])
        return f"{tag}_y"

    for name, value in (("eps", 1e-5), ("c127", 127.0), ("lo", -128.0), ("hi", 127.0)):
        inits.append(numpy_helper.from_array(np.array(value, np.float32), name))
    h = linear("x", k, hidden, "fc1")
    nodes.append(helper.make_node("Relu", [h], ["h_relu"]))
    y = linear("h_relu", hidden, n, "fc2")
    graph = helper.make_graph(
        nodes, "qdq_ternary", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, tokens, k])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, tokens, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_qdq_ternary_weights_recognised():
    model = _qdq_model()
    art = fc.compile(model, "x86")
    assert art.report["fused"]["ternary_matmul"] == 2 and art.report["fused"]["unfused"] == []
    x = np.random.default_rng(1).normal(size=(1, 5, 24)).astype(np.float32)
    got = art.run(x)
    ref = _numpy_reference(model, x)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    # onnxruntime rewrites QDQ + MatMul into its own int8 kernels (different rounding): looser
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ort_out = sess.run(None, {"x": x})[0]
    print(f"QDQ: max |d| vs numpy {np.abs(ref - got).max():.2e}, vs onnxruntime "
          f"{np.abs(ort_out - got).max():.2e}")
    np.testing.assert_allclose(got, ort_out, atol=2e-3)


def _numpy_reference(model, x):
    """The graph's math: per-token absmax int8 fake-quant, int8 codes * per-channel scale."""
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}

    def linear(v, tag):
        s = np.maximum(np.abs(v).max(-1, keepdims=True), np.float32(1e-5)) / np.float32(127)
        q = np.clip(np.round(v / s), -128, 127) * s
        w = init[f"{tag}_w"].astype(np.float32) * init[f"{tag}_scale"]
        return (q.astype(np.float64) @ w.astype(np.float64)).astype(np.float32) + init[f"{tag}_b"]

    return linear(np.maximum(linear(x, "fc1"), 0), "fc2")


def test_malformed_and_dynamic_onnx_rejected(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(ImportError_, match="bad.onnx"):
        fc.compile(str(bad), "x86")
    model = _qdq_model()
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "tokens"
    with pytest.raises(ImportError_, match="dynamic"):
        fc.compile(model, "x86")
