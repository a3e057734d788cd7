"""The latency estimate's arithmetic (fter_tvm.latency) and its place in the report page."""

from __future__ import annotations

import pytest

from fter_tvm.latency import OUTSIDE, LatencyModel, estimate_latency, format_latency
from fter_tvm.report_page import report_html

# 240 M instructions = 1 s at 240 MHz and 1 instruction/cycle; 40 MB at 40 MB/s = 1 s
TWO = {"core": "lx106", "workers": 2, "instructions": 480_000_000,
       "critical_path_instructions": 300_000_000,
       "by_kind": {"ternary_matmul": 360_000_000, "layernorm": 96_000_000},
       "critical_by_kind": {"ternary_matmul": 192_000_000, "layernorm": 84_000_000}}


def test_milliseconds_per_kind_and_total():
    est = estimate_latency(TWO, 4_000_000)
    assert est["one_core_ms"] == pytest.approx(2000.0)
    assert est["two_cores_ms"] == pytest.approx(1250.0)
    assert est["by_kind"]["ternary_matmul"]["ms_one_core"] == pytest.approx(1500.0)
    assert est["by_kind"]["ternary_matmul"]["ms_two_cores"] == pytest.approx(800.0)
    assert est["by_kind"]["layernorm"]["ms_two_cores"] == pytest.approx(350.0)
    # what runs outside the kernels (24 M instructions) is serial: the same on both
    assert est["by_kind"][OUTSIDE]["ms_one_core"] == est["by_kind"][OUTSIDE]["ms_two_cores"] \
        == pytest.approx(100.0)
    assert sum(r["ms_one_core"] for r in est["by_kind"].values()) == pytest.approx(2000.0)
    assert sum(r["ms_two_cores"] for r in est["by_kind"].values()) == pytest.approx(1250.0)
    assert list(est["by_kind"]) == ["ternary_matmul", "layernorm", OUTSIDE]   # largest first


def test_flash_bound_and_estimate():
    est = estimate_latency(TWO, 4_000_000)                  # 4 MB at 40 MB/s
    assert est["flash_bound_ms"] == pytest.approx(100.0)
    assert est["estimate_two_cores_ms"] == pytest.approx(1250.0)   # compute-bound
    fast = estimate_latency(TWO, 4_000_000, LatencyModel(clock_mhz=2400.0, flash_mb_per_s=10.0))
    assert fast["two_cores_ms"] == pytest.approx(125.0)
    assert fast["flash_bound_ms"] == pytest.approx(400.0)
    assert fast["estimate_one_core_ms"] == fast["estimate_two_cores_ms"] == pytest.approx(400.0)
    half = estimate_latency(TWO, 0, LatencyModel(instructions_per_cycle=2.0))
    assert half["one_core_ms"] == pytest.approx(1000.0) and half["flash_bound_ms"] == 0.0


def test_one_worker_has_no_two_core_figure():
    one = dict(TWO, workers=1, critical_path_instructions=TWO["instructions"])
    del one["critical_by_kind"]
    est = estimate_latency(one, 1000)
    assert est["two_cores_ms"] is None and est["estimate_two_cores_ms"] is None
    assert all(r["ms_two_cores"] is None for r in est["by_kind"].values())
    assert "two workers" in "\n".join(format_latency(est))


@pytest.mark.parametrize("bad", [dict(clock_mhz=0), dict(flash_mb_per_s=-1),
                                 dict(instructions_per_cycle=0)])
def test_assumptions_must_be_positive(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        LatencyModel(**bad)


def test_counts_that_do_not_add_up_are_refused():
    with pytest.raises(ValueError, match="more than the total"):
        estimate_latency(dict(TWO, instructions=1), 0)
    with pytest.raises(ValueError, match="weight_bytes_read"):
        estimate_latency(TWO, -1)


def test_text_and_page_state_the_assumptions():
    est = estimate_latency(TWO, 4_000_000)
    text = "\n".join(format_latency(est))
    assert "1 instruction/cycle at 240 MHz" in text and "40 MB/s" in text
    assert "1250.00" in text and "2000.00" in text
    page = report_html({"simulation": dict(TWO, latency=est)}, [], b"").decode()
    assert "Latency estimate" in page and "flash cache" in page and "1,250.00" not in page
    assert "1250.00 ms on two" in page and 'alt="estimated milliseconds per kernel kind"' in page
