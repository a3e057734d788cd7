"""The generated C, the AOT executor and the micro-kernels (PIE emulation included) under AddressSanitizer +
UndefinedBehaviorSanitizer (``FTER_SANITIZE=1`` / ``build_host(sanitize=True)``) and valgrind.
ThreadSanitizer (``FTER_SANITIZE=thread``) runs the two-worker build in tests/test_dual_core.py.

A sanitized program stops at its first finding with a non-zero status (``ProgramError``). The
kernel tests (scalar, PIE and integer) fence each case's bytes of their static buffers (`fter_fence`) and the AOT executor fences the arena to
the running call's tensors, so reads past a tensor inside those arrays are findings too.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

import fter_tvm as fc
from fter_tvm.models import load_demo_model
from fter_tvm.models.vit import FTerViT, FTerViTConfig
from runtime.host_sim import SANITIZE_ENV, build_host, run_host
from test_kernels_c import KERNEL_TEST, LIBC_TEST, check_kernel_output, kernel_cases, require

pytestmark = pytest.mark.cc


@pytest.mark.parametrize("defines", [{}, {"FTER_KERNELS_REF": None}], ids=["opt", "ref"])
def test_kernels_at_edge_sizes(tmp_path, defines):
    require("host")
    blob, expected = kernel_cases()
    res = run_host(build_host([KERNEL_TEST], tmp_path, defines, sanitize=True), blob)
    assert "kernels ok" in res.stdout
    check_kernel_output(res.output, expected)


def test_pie_kernels(tmp_path):
    """The PIE micro-kernels in their exact C emulation (what host-sim and the lx106 run)."""
    require("host")
    from test_pie import DEFINES, PIE_TEST, check_output, pie_cases

    cases = pie_cases()
    res = run_host(build_host([PIE_TEST], tmp_path, DEFINES, sanitize=True), cases.stream())
    assert "pie ok" in res.stdout and "FAIL" not in res.stdout, res.stdout
    check_output(res.output, cases.expected)


def test_integer_kernels(tmp_path):
    """The integer mode's C kernels (LayerNorm, values and codes, softmax, residual, patch codes,
    tables) on tests/test_integer_c.py's cases, each case's buffers fenced to its sizes."""
    require("host")
    from test_integer_c import TEST_PROGRAM, _check, cases

    blob, expected = cases()
    res = run_host(build_host([TEST_PROGRAM], tmp_path, sanitize=True), blob)
    assert "integer kernels ok" in res.stdout
    _check(res.output, expected)


def _fails_sanitized(tmp_path, program, anchor, injected, stream, **build):
    src = program.read_text()
    assert anchor in src, anchor
    (tmp_path / "bad.c").write_text(src.replace(anchor, anchor + injected, 1))
    exe = build_host([tmp_path / "bad.c"], tmp_path / "b", sanitize=True,
                     extra_include_dirs=[program.parent], **build)
    with pytest.raises(Exception, match="exited with status"):
        run_host(exe, stream)


def test_fences_catch_a_read_past_k(tmp_path):
    """The fence is real: the kernel test with one byte read past x fails under the sanitizer."""
    require("host")
    _fails_sanitized(tmp_path, KERNEL_TEST, "    int rc;\n",
                     "    { volatile int8_t past = x[k]; (void)past; }\n", kernel_cases()[0])


@pytest.mark.parametrize("injected", [
    "  { volatile int8_t past = x[x_bytes]; (void)past; }\n",     # one byte past the tokens
    "  { volatile uint8_t past = wbuf[w_bytes]; (void)past; }\n",  # one byte past the weights
    "  acc_pie[acc_n] = 0;\n",                                      # one word past the output
], ids=["x", "w", "acc"])
def test_pie_fences_catch_an_access_past_the_operands(tmp_path, injected):
    """The PIE kernel test's static buffers are fenced to each case's operands as well."""
    from test_pie import DEFINES, PIE_TEST, pie_cases

    require("host")
    _fails_sanitized(tmp_path, PIE_TEST, "  uint32_t t0 = fter_cycles();\n", injected,
                     pie_cases().stream(), defines=DEFINES)


def test_libc(tmp_path):
    require("host")
    exe = build_host([LIBC_TEST], tmp_path, {"FTER_TEST_SOFTFLOAT": None}, sanitize=True)
    from test_kernels_c import libc_input, sweep_inputs

    run_host(exe, libc_input(0, sweep_inputs()))


def sanitized_and_plain(art, xs, monkeypatch) -> tuple[np.ndarray, np.ndarray]:
    monkeypatch.setenv(SANITIZE_ENV, "1")
    san = np.stack([art.run(x) for x in xs])
    monkeypatch.delenv(SANITIZE_ENV)   # the plain build (valgrind cannot run ASan binaries)
    return san, np.stack([art.run(x) for x in xs])


def check_model(model, xs, monkeypatch):
    art = fc.compile(model, "esp32s3", (xs[0],))
    san, plain = sanitized_and_plain(art, xs, monkeypatch)
    # same C, same float code: the sanitized build computes the very same bits
    np.testing.assert_array_equal(san.view(np.uint32), plain.view(np.uint32))
    return art


@pytest.mark.slow   # one more compile of the digits model (the tiny ViT covers the default tier)
def test_digits_model(monkeypatch):
    require("host")
    from fter_tvm.data import digits_split

    x = digits_split()[2][:4]
    check_model(load_demo_model(), [x[i:i + 1] for i in range(len(x))], monkeypatch)


def tiny_vit() -> FTerViT:
    torch.manual_seed(0)
    return FTerViT(FTerViTConfig(img_size=16, patch_size=4, in_chans=1, num_classes=10,
                                 embed_dim=32, depth=2, num_heads=2, mlp_ratio=2,
                                 layer_scale_init=0.1)).eval()


def test_tiny_vit_and_valgrind(monkeypatch):
    require("host")
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(1, 1, 16, 16, generator=g) for _ in range(3)]
    art = check_model(tiny_vit(), xs, monkeypatch)
    if shutil.which("valgrind") is None:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(
            "valgrind not installed (apt-get install valgrind; make tools does)")
    res = run_host(art._binary("host"), xs[0].numpy().tobytes(),
                   launcher=("valgrind", "--error-exitcode=1", "--leak-check=full", "-q"))
    np.testing.assert_array_equal(np.frombuffer(res.output, np.float32).reshape(1, -1),
                                  art.run(xs[0]))


@pytest.mark.slow
def test_deit_tiny(monkeypatch):
    require("host")
    import timm

    from fter_tvm.models import ternarize

    torch.manual_seed(0)
    model = ternarize(timm.create_model("deit_tiny_patch16_224", num_classes=10)).eval()
    check_model(model, [torch.randn(1, 3, 224, 224)], monkeypatch)
