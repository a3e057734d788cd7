"""Compilation targets: small classes of settings, one per device family."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    name: str
    pack_format: str = "b3"
    alignment: int = 16
    # trade a little compute for activation memory (token-streamed MLP, int8-only Q/K/V)
    low_memory: bool = False


def _host_llvm_target() -> dict:
    from schedules.x86 import host_target   # tvm is imported only when an x86 target is made

    return host_target()


@dataclass(frozen=True)
class X86Target(Target):
    """LLVM build run by TVM's Relax VM on this machine.

    ``tvm_target`` picks the kernels' instruction set: this CPU by default (AVX-512 VNNI here);
    ``{"kind": "llvm", "mcpu": "haswell"}`` or an added ``"mattr": ["-avx512f"]`` forces AVX2.
    ``pack_format`` ``v16x4`` stores one byte per weight in VNNI tiles (speed over size).
    """

    name: str = "x86"
    pack_format: str = "v16x4"
    tvm_target: dict = field(default_factory=_host_llvm_target)
    num_threads: int = 2


@dataclass(frozen=True)
class BoardLimits:
    flash_bytes: int = 8 * 1024 * 1024
    psram_bytes: int = 8 * 1024 * 1024
    sram_bytes: int = 512 * 1024
    # internal SRAM left for the arena once ESP-IDF, stacks and caches take theirs
    sram_arena_budget: int = 320 * 1024


@dataclass(frozen=True)
class Esp32s3Target(Target):
    """Standalone C for the ESP32-S3 (Xtensa LX7), also run on the host and in the Xtensa ISS."""

    name: str = "esp32s3"
    tvm_target: dict = field(default_factory=lambda: {"kind": "c"})
    kernel_variant: str = "pie"   # "pie": PIE micro-kernels (C-emulated off the chip); "xtensa": scalar
    low_memory: bool = True
    # side tensors rounded to fp16 in flash, by role ("bias", "scale"); values exact in fp16
    # (cls/pos, zero biases) always are. Biases by default: on the trained digits model they
    # keep 360/360 top-1; rounded scales flip 1 of 360 (README "Flash")
    fp16_rounded: tuple = ("bias",)
    board: BoardLimits = field(default_factory=BoardLimits)
    # "integer": fixed-point LayerNorm, softmax, GELU and quantizers (schedules.integer.intmath,
    # PIE kernels only); "float": their fp32 forms; None: integer with the PIE kernels (it meets
    # the fidelity bar, README "Integer numerics"), float with the scalar ones
    numerics: str | None = None

    def __post_init__(self):
        if self.numerics is not None and self.numerics not in NUMERICS:
            raise ValueError(f"unknown numerics {self.numerics!r}; choose one of {NUMERICS}")
        if self.numerics == "integer" and self.kernel_variant != "pie":
            raise ValueError("numerics='integer' needs kernel_variant='pie' (the integer kernels "
                             f"have PIE schedules only), got kernel_variant={self.kernel_variant!r}")

    @property
    def numerics_mode(self) -> str:
        """The numerics the build uses: ``numerics``, or the kernel variant's default."""
        if self.numerics is not None:
            return self.numerics
        return "integer" if self.kernel_variant == "pie" else "float"


NUMERICS = ("float", "integer")
TARGETS = {"x86": X86Target, "esp32s3": Esp32s3Target}


def get_target(target) -> Target:
    """A :class:`Target` from its name or instance; unknown names raise ``ValueError``."""
    if isinstance(target, Target):
        return target
    try:
        return TARGETS[target]()
    except KeyError:
        raise ValueError(f"unknown target {target!r}; choose one of {sorted(TARGETS)}") from None


def with_numerics(target: Target, numerics: str | None) -> Target:
    """``target`` with its numerics mode set (``None``: unchanged).

    Raises:
        ValueError: an unknown mode, or ``"integer"`` for a target without integer kernels.
    """
    if numerics is None:
        return target
    if not hasattr(target, "numerics"):
        if numerics == "float":
            return target
        raise ValueError(f"numerics={numerics!r}: target {target.name!r} runs float numerics only "
                         "(the integer mode is an esp32s3 setting)")
    from dataclasses import replace

    return replace(target, numerics=numerics)


class ModelTooLargeError(ValueError):
    """The model does not fit the board; raised before anything is written."""
