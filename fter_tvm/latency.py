"""Latency estimate of an esp32s3 build from its simulated instruction counts.

The simulators count instructions, not time. The estimate turns counts into milliseconds under
stated assumptions (`LatencyModel`): the core retires `instructions_per_cycle` instructions per
cycle at `clock_mhz` (1 per cycle at 240 MHz: no stalls, i.e. weights and activations hit the
caches; weights are read through the flash cache, code runs from IRAM/cache), for one core
(every instruction the simulated run executed) and for two cores (its critical path: per split
kernel stage the longer half, plus everything else, see `runtime.split_workers`). A second,
independent bound is the flash bandwidth: every weight byte a kernel call takes as an argument
crosses the SPI bus at least once per inference (the flash cache is 16-64 KiB, DeiT-Tiny's
weights are 1.3 MB), at `flash_mb_per_s` (quad SPI at 80 MHz moves 4 bits per clock: 40 MB/s;
octal DTR flash roughly doubles that); both cores share that bus. The estimate is the larger of
compute and flash time -- a lower bound on silicon time, never measured on a board here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

OUTSIDE = "outside kernels"   # main(): the call loop, output copy, profiling hooks


@dataclass(frozen=True)
class LatencyModel:
    """The assumptions of the estimate (all parameters, stated in every result)."""

    clock_mhz: float = 240.0               # ESP32-S3 maximum CPU clock
    instructions_per_cycle: float = 1.0    # in-order LX7, no stalls assumed
    flash_mb_per_s: float = 40.0           # quad SPI flash at 80 MHz (4 bits per clock)

    def __post_init__(self):
        for name in ("clock_mhz", "instructions_per_cycle", "flash_mb_per_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LatencyModel.{name} must be positive, got {getattr(self, name)}")

    def compute_ms(self, instructions: int) -> float:
        """Milliseconds for ``instructions`` on one core."""
        return instructions / (self.clock_mhz * 1e6 * self.instructions_per_cycle) * 1e3

    def flash_ms(self, nbytes: int) -> float:
        """Milliseconds to stream ``nbytes`` from flash."""
        return nbytes / (self.flash_mb_per_s * 1e6) * 1e3

    def describe(self) -> str:
        return (f"{self.instructions_per_cycle:g} instruction/cycle at {self.clock_mhz:g} MHz, "
                f"weights read through the flash cache; flash bound at {self.flash_mb_per_s:g} MB/s")


def estimate_latency(stats: dict, weight_bytes_read: int, model: LatencyModel = LatencyModel()
                     ) -> dict:
    """Milliseconds per kernel kind and in total, one core and two cores, and the flash bound.

    Args:
        stats: ``Esp32s3Artifact.simulate`` stats: ``instructions``, ``by_kind``, and (two-worker
            simulation) ``critical_path_instructions`` and ``critical_by_kind``.
        weight_bytes_read: bytes of weights the kernel calls read per inference.
        model: the assumptions.
    Returns:
        ``{"assumptions", "core", "by_kind": {kind: {instructions, critical_path_instructions,
        ms_one_core, ms_two_cores}}, "one_core_ms", "two_cores_ms", "flash_bound_ms",
        "weight_bytes_read", "estimate_one_core_ms", "estimate_two_cores_ms"}``. Two-core fields
        are None when the simulation ran one worker (no halves were counted).
    Raises:
        ValueError: counts that do not add up (kinds above the total, a negative byte count).
    """
    if weight_bytes_read < 0:
        raise ValueError(f"weight_bytes_read must be >= 0, got {weight_bytes_read}")
    two = stats.get("workers", 1) == 2
    total = int(stats["instructions"])
    kinds = dict(stats["by_kind"])
    critical = dict(stats.get("critical_by_kind", kinds)) if two else {}
    outside = total - sum(kinds.values())
    if outside < 0:
        raise ValueError(f"kernel kinds add up to {sum(kinds.values())} instructions, more than "
                         f"the total {total}")
    kinds[OUTSIDE] = outside
    critical[OUTSIDE] = outside   # the call loop runs on one worker
    by_kind = {}
    for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        c = critical.get(kind) if two else None
        by_kind[kind] = {"instructions": n, "critical_path_instructions": c,
                         "ms_one_core": model.compute_ms(n),
                         "ms_two_cores": model.compute_ms(c) if c is not None else None}
    one_ms = model.compute_ms(total)
    two_ms = model.compute_ms(int(stats["critical_path_instructions"])) if two else None
    flash_ms = model.flash_ms(weight_bytes_read)
    return {"assumptions": {**asdict(model), "text": model.describe()}, "core": stats.get("core"),
            "by_kind": by_kind, "one_core_ms": one_ms, "two_cores_ms": two_ms,
            "flash_bound_ms": flash_ms, "weight_bytes_read": weight_bytes_read,
            "estimate_one_core_ms": max(one_ms, flash_ms),
            "estimate_two_cores_ms": max(two_ms, flash_ms) if two else None}


def format_latency(est: dict) -> list[str]:
    """The estimate as text lines (what ``fter-tvm simulate`` prints)."""
    two = est["two_cores_ms"] is not None
    lines = [f"  latency estimate on the {est['core']} core ({est['assumptions']['text']}):",
             f"    {'kind':<18}{'1 core ms':>11}" + (f"{'2 cores ms':>12}" if two else "")]
    for kind, row in est["by_kind"].items():
        lines.append(f"    {kind:<18}{row['ms_one_core']:>11.2f}"
                     + (f"{row['ms_two_cores']:>12.2f}" if two else ""))
    lines.append(f"    {'total':<18}{est['one_core_ms']:>11.2f}"
                 + (f"{est['two_cores_ms']:>12.2f}" if two else ""))
    lines.append(f"    flash bound: {est['weight_bytes_read']:,} B of weights per inference = "
                 f"{est['flash_bound_ms']:.2f} ms; estimate {est['estimate_one_core_ms']:.2f} ms "
                 "on one core" + (f", {est['estimate_two_cores_ms']:.2f} ms on two"
                                  if two else " (simulate with two workers for the two-core figure)"))
    return lines
