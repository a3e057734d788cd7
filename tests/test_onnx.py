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
from fter_tvm.compile import fuse_model
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


QDQ_LAYOUTS = {
    # int8 codes [in, out] -> DequantizeLinear(axis=1) -> MatMul
    "matmul_axis1": (1, "int8"),
    # int8 codes [out, in] -> DequantizeLinear(axis=0) -> Gemm(transB=1): torch's Linear on 2-D
    "gemm_axis0": (0, "int8"),
    # int8 codes [out, in] -> DequantizeLinear(axis=0) -> Transpose -> MatMul (no folding)
    "transpose_axis0": (0, "int8"),
    # fp32 alpha*codes [out, in] -> QuantizeLinear(axis=0) -> DequantizeLinear(axis=0) -> Gemm:
    # the QDQ pair ONNX Runtime's quantizer writes around a weight
    "qdq_axis0": (0, "float32"),
}


def _qdq_model(k=24, hidden=40, n=6, tokens=5, seed=0, layout="matmul_axis1"):
    """x -> dynamic per-token absmax int8 fake-quant -> x @ dequantized ternary W + b, twice."""
    rng = np.random.default_rng(seed)
    axis, stored = QDQ_LAYOUTS[layout]
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
        codes = rng.integers(-1, 2, (kin, kout) if axis == 1 else (kout, kin)).astype(np.int8)
        scale = rng.uniform(0.02, 0.1, kout).astype(np.float32)
        weight = codes if stored == "int8" else codes * (scale[:, None] if axis == 0 else scale)
        inits.extend([numpy_helper.from_array(weight.astype(stored), f"{tag}_w"),
                      numpy_helper.from_array(scale, f"{tag}_scale"),
                      numpy_helper.from_array(np.zeros(kout, np.int8), f"{tag}_zp"),
                      numpy_helper.from_array(rng.normal(0, 0.1, kout).astype(np.float32), f"{tag}_b")])
        w_int8 = f"{tag}_w"
        if stored == "float32":
            nodes.append(helper.make_node("QuantizeLinear", [f"{tag}_w", f"{tag}_scale", f"{tag}_zp"],
                                          [f"{tag}_wq"], axis=axis))
            w_int8 = f"{tag}_wq"
        nodes.append(helper.make_node("DequantizeLinear", [w_int8, f"{tag}_scale", f"{tag}_zp"],
                                      [f"{tag}_wf"], axis=axis))
        xq = quant(inp, tag)
        if layout in ("gemm_axis0", "qdq_axis0"):
            nodes.append(helper.make_node("Gemm", [xq, f"{tag}_wf", f"{tag}_b"], [f"{tag}_y"], transB=1))
            return f"{tag}_y"
        w = f"{tag}_wf"
        if layout == "transpose_axis0":
            nodes.append(helper.make_node("Transpose", [w], [f"{tag}_wt"], perm=[1, 0]))
            w = f"{tag}_wt"
        nodes.extend([helper.make_node("MatMul", [xq, w], [f"{tag}_mm"]),
                      helper.make_node("Add", [f"{tag}_mm", f"{tag}_b"], [f"{tag}_y"])])
        return f"{tag}_y"

    for name, value in (("eps", 1e-5), ("c127", 127.0), ("lo", -128.0), ("hi", 127.0)):
        inits.append(numpy_helper.from_array(np.array(value, np.float32), name))
    h = linear("x", k, hidden, "fc1")
    nodes.append(helper.make_node("Relu", [h], ["h_relu"]))
    y = linear("h_relu", hidden, n, "fc2")
    lead = [tokens] if layout in ("gemm_axis0", "qdq_axis0") else [1, tokens]   # Gemm is 2-D
    graph = helper.make_graph(
        nodes, "qdq_ternary", [helper.make_tensor_value_info("x", TensorProto.FLOAT, lead + [k])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, lead + [n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("layout", list(QDQ_LAYOUTS))
def test_qdq_ternary_weights_recognised(layout):
    model = _qdq_model(layout=layout)
    art = fc.compile(model, "x86")
    assert art.report["fused"]["ternary_matmul"] == 2 and art.report["fused"]["unfused"] == []
    matmuls = [row for row in art.report["layers"] if row["kind"] == "ternary_matmul"]
    assert [row["params"]["fmt"] for row in matmuls] == ["v16x4", "v16x4"]   # x86's VNNI tiles
    assert art.report["weight_bytes"]["other_constants"] == 0     # no fp32 matrix left behind
    # the esp32s3 pipeline packs the same weights base-3: 5 per byte
    _, esp_report = fuse_model(model, "esp32s3")
    assert esp_report["fused"]["ternary_matmul"] == 2
    assert esp_report["weight_bytes"]["packed_weights"] <= (24 // 5 + 1) * 40 + (40 // 5) * 6
    x = np.random.default_rng(1).normal(size=art.input_shape).astype(np.float32)
    got = art.run(x)
    ref = _numpy_reference(model, x, axis=QDQ_LAYOUTS[layout][0])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    # onnxruntime rewrites QDQ + MatMul into its own int8 kernels (different rounding): looser
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ort_out = sess.run(None, {"x": x})[0]
    print(f"QDQ {layout}: max |d| vs numpy {np.abs(ref - got).max():.2e}, vs onnxruntime "
          f"{np.abs(ort_out - got).max():.2e}")
    np.testing.assert_allclose(got, ort_out, atol=2e-3)


def _numpy_reference(model, x, axis=1):
    """The graph's math: per-token absmax int8 fake-quant, int8 codes * per-channel scale."""
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}

    def linear(v, tag):
        s = np.maximum(np.abs(v).max(-1, keepdims=True), np.float32(1e-5)) / np.float32(127)
        q = np.clip(np.round(v / s), -128, 127) * s
        scale = init[f"{tag}_scale"]
        codes = init[f"{tag}_w"]
        if codes.dtype != np.int8:      # the QDQ pair: quantize the float weight first
            codes = np.round(codes / (scale[:, None] if axis == 0 else scale))
        w = codes.astype(np.float32) * (scale[:, None] if axis == 0 else scale)
        w = w.T if axis == 0 else w
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


def _one_node(node, inputs, outputs, inits=()):
    graph = helper.make_graph([node], "one", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


def test_unsupported_element_type_names_the_node():
    """float8 and friends used to convert to wrong values silently: now refused by name."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT8E4M3FN, [4])
    model = _one_node(helper.make_node("Cast", ["x"], ["y"], name="to_fp8", to=TensorProto.FLOAT8E4M3FN),
                      [x], [y])
    with pytest.raises(ImportError_, match="output 'y' has element type FLOAT8E4M3FN"):
        fc.compile(model, "x86")
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.FLOAT
    with pytest.raises(ImportError_, match="'to_fp8' \\(Cast\\): attribute to .*FLOAT8E4M3FN"):
        fc.compile(model, "x86")


def test_converter_error_names_the_node():
    """An attribute the Relax frontend cannot convert (blocked quantization) names the node."""
    w = numpy_helper.from_array(np.ones((4, 8), np.int8), "w")
    scale = numpy_helper.from_array(np.ones((4, 2), np.float32), "scale")
    node = helper.make_node("DequantizeLinear", ["w", "scale"], ["wf"], name="w_dq", axis=1,
                            block_size=4)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    model = _one_node(node, [x], [helper.make_tensor_value_info("wf", TensorProto.FLOAT, [4, 8])],
                      [w, scale])
    with pytest.raises(ImportError_, match="'w_dq' \\(DequantizeLinear\\): .*blocked"):
        fc.compile(model, "x86")


def test_constant_value_ints_and_layer_norm_stats():
    """Constant from value_ints (dynamo exporter without its optimizer) and LayerNormalization's
    Mean / InvStdDev outputs (the stock converter returned 0-d placeholders)."""
    from test_onnx_node import run_x86

    shape = helper.make_node("Constant", [], ["shape"], value_ints=[2, 6])
    reshape = helper.make_node("Reshape", ["x", "shape"], ["x2"])
    ln = helper.make_node("LayerNormalization", ["x2", "g", "b"], ["y", "mean", "inv_std"],
                          axis=-1, epsilon=1e-5)
    inits = [numpy_helper.from_array(np.linspace(0.5, 1.5, 6).astype(np.float32), "g"),
             numpy_helper.from_array(np.zeros(6, np.float32), "b")]
    graph = helper.make_graph(
        [shape, reshape, ln], "ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6]),
         helper.make_tensor_value_info("mean", TensorProto.FLOAT, [2, 1]),
         helper.make_tensor_value_info("inv_std", TensorProto.FLOAT, [2, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    y, mean, inv_std = run_x86(model, [x])
    x2 = x.reshape(2, 6)
    np.testing.assert_allclose(mean, x2.mean(-1, keepdims=True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(x2.var(-1, keepdims=True) + 1e-5), rtol=1e-5)
    np.testing.assert_allclose(y, (x2 - mean) * inv_std * np.linspace(0.5, 1.5, 6), rtol=1e-5,
                               atol=1e-6)
