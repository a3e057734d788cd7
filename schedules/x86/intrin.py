"""x86 tensor intrinsics: one broadcast group of 4 bytes dotted with a [lanes x 4] byte tile.

Each intrinsic is a ``desc`` (the scalar meaning: ``c[i] += a[r] * b[i, r]`` in int32) and an
``impl`` of LLVM x86 intrinsics, registered with ``TensorIntrin.register`` at import under the
name constant beside it. VNNI (``vpdpbusd``) multiplies unsigned by signed bytes, so there is one
intrinsic per operand order:

* ``S8U8`` -- ternary matmul: ``a`` = 4 int8 activations, ``b`` = weight codes in {0, 1, 2}.
* ``U8S8`` -- attention: ``a`` = 4 uint8 (probabilities, or queries shifted by +128),
  ``b`` = int8 keys / values.

Instruction sets:

* ``vnni``: ``vpdpbusd zmm`` -- 16 lanes x 4 per instruction, exact (no saturation).
* ``avx2``: ``vpmaddubsw`` + ``vpmaddwd`` (with ones) + ``vpaddd`` on ymm -- 8 lanes x 4. Only for
  ``S8U8``: ``vpmaddubsw`` saturates int16 pair sums, and |code| <= 2, |q| <= 128 bound a pair by
  512, while u8 x s8 attention pairs reach 64770.
"""

from __future__ import annotations

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T


def _dot(lanes: int, a_dtype: str, b_dtype: str, group: int = 4, update=None):
    """A dot intrinsic's PrimFunc over ``group`` broadcast values ``a``, a [lanes x group] tile
    ``b`` and ``lanes`` int32 sums ``c``. ``update`` None: the desc, ``c[i] += sum_r a[r] *
    b[i, r]`` in int32; otherwise the impl, ``c[0:lanes] = update(a, b, c)`` (one vector
    expression of LLVM intrinsics). Desc and impl are one template, so their buffers agree."""
    @T.prim_func(s_tir=True)
    def func(a: T.Buffer((group,), a_dtype, offset_factor=1),
             b: T.Buffer((lanes, group), b_dtype, offset_factor=1),
             c: T.Buffer((lanes,), "int32", offset_factor=1)):
        with T.sblock("root"):
            T.reads(c[0:lanes], a[0:group], b[0:lanes, 0:group])
            T.writes(c[0:lanes])
            if update is None:
                for i, r in T.grid(lanes, group):
                    with T.sblock("update"):
                        vi, vr = T.axis.remap("SR", [i, r])
                        c[vi] = c[vi] + T.Cast("int32", a[vr]) * T.Cast("int32", b[vi, vr])
            else:
                c[T.ramp(T.int32(0), 1, lanes)] = update(a, b, c)

    return func


# Notes shared by the impls:
# - LLVM >= 21 types the VNNI operands as <64 x i8> (TVM's bundled dot_16x4_vnni still passes
#   i32x16, which no longer verifies).
# - No Let for the broadcast word: TVM spills Let values to the stack, and that store made LLVM
#   reload every weight tile once per row (2x slower).

def _broadcast_group(a, dtype: str, group: int, lanes: int):
    """The ``group`` values of ``a`` (one 32-bit word) repeated in each of ``lanes`` words."""
    return T.reinterpret(T.broadcast(T.reinterpret(a.vload([0], f"{dtype}x{group}"), dtype="int32"),
                                     lanes), dtype=f"{dtype}x{lanes * group}")


def _pmaddubsw(u8, s8):
    """``vpmaddubsw`` (ymm): u8 x s8 products, adjacent pairs summed into int16 (saturating)."""
    return T.call_llvm_pure_intrin(T.llvm_lookup_intrinsic_id("llvm.x86.avx2.pmadd.ub.sw"),
                                   u8, s8, dtype="int16x16")


def _pmaddwd(x, y):
    """``vpmaddwd`` (ymm): int16 products, adjacent pairs summed into int32."""
    return T.call_llvm_pure_intrin(T.llvm_lookup_intrinsic_id("llvm.x86.avx2.pmadd.wd"), x, y,
                                   dtype="int32x8")


def _vnni_impl(a_dtype: str, b_dtype: str):
    def vpdpbusd(a, b, c):
        if a_dtype == "uint8":      # broadcast group is the unsigned operand
            u8, s8 = _broadcast_group(a, "uint8", 4, 16), b.vload([0, 0], "int8x64")
        else:                       # tile is the unsigned operand
            u8, s8 = b.vload([0, 0], "uint8x64"), _broadcast_group(a, "int8", 4, 16)
        return T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id("llvm.x86.avx512.vpdpbusd.512"), c.vload([0], "int32x16"),
            u8, s8, dtype="int32x16")

    return _dot(16, a_dtype, b_dtype, update=vpdpbusd)


def _avx2_s8u8(a, b, c):
    """AVX2 without int16 accumulation: ``vpmaddubsw``, widened by ``vpmaddwd`` with ones."""
    pairs = _pmaddubsw(b.vload([0, 0], "uint8x32"), _broadcast_group(a, "int8", 4, 8))
    return c.vload([0], "int32x8") + _pmaddwd(pairs, T.broadcast(T.int16(1), 16))


def _i16(a, b, c):
    """int16 codes (attention on AVX2): one broadcast pair against the tile, ``vpmaddwd``."""
    return c.vload([0], "int32x8") + _pmaddwd(b.vload([0, 0], "int16x16"),
                                              _broadcast_group(a, "int16", 2, 8))


# ---- AVX2 with int16 accumulation (``forms.ternary_matmul_i16``) ---------------------------------
# vpmaddubsw's int16 pair sums of weight codes (<= 2) and int8 activations are at most 512 in
# magnitude, so up to 63 of them add up in int16 without overflow: the inner loop is one
# vpmaddubsw + one vpaddw per 32 MACs, and the vpmaddwd widening to int32 runs once per k-block.

def _pair16(update=None):
    """``c[i, h] += a[2h] * b[i, 2h] + a[2h+1] * b[i, 2h+1]`` in int16 (desc), or the impl
    ``c = update(a, b, c)`` (as ``_dot``)."""
    @T.prim_func(s_tir=True)
    def func(a: T.Buffer((4,), "int8", offset_factor=1),
             b: T.Buffer((8, 4), "uint8", offset_factor=1),
             c: T.Buffer((8, 2), "int16", offset_factor=1)):
        with T.sblock("root"):
            T.reads(c[0:8, 0:2], a[0:4], b[0:8, 0:4])
            T.writes(c[0:8, 0:2])
            if update is None:
                for i, h, r in T.grid(8, 2, 2):
                    with T.sblock("update"):
                        vi, vh, vr = T.axis.remap("SSR", [i, h, r])
                        c[vi, vh] = c[vi, vh] + T.Cast("int16", a[vh * 2 + vr]) * T.Cast(
                            "int16", b[vi, vh * 2 + vr])
            else:
                c.vstore([0, 0], update(a, b, c))

    return func


def _widen16(update=None):
    """``c[i] += a[i, 0] + a[i, 1]`` in int32 (desc), or the impl ``c = update(a, c)``."""
    @T.prim_func(s_tir=True)
    def func(a: T.Buffer((8, 2), "int16", offset_factor=1),
             c: T.Buffer((8,), "int32", offset_factor=1)):
        with T.sblock("root"):
            T.reads(c[0:8], a[0:8, 0:2])
            T.writes(c[0:8])
            if update is None:
                for i, h in T.grid(8, 2):
                    with T.sblock("update"):
                        vi, vh = T.axis.remap("SR", [i, h])
                        c[vi] = c[vi] + T.Cast("int32", a[vi, vh])
            else:
                c[T.ramp(T.int32(0), 1, 8)] = update(a, c)

    return func


def _pair16_step(a, b, c):
    return c.vload([0, 0], "int16x16") + _pmaddubsw(b.vload([0, 0], "uint8x32"),
                                                   _broadcast_group(a, "int8", 4, 8))


def _widen16_step(a, c):
    return c.vload([0], "int32x8") + _pmaddwd(a.vload([0, 0], "int16x16"),
                                              T.broadcast(T.int16(1), 16))


VNNI_S8U8_16x4 = "fter_x86_dot_s8u8_16x4_vnni"
VNNI_U8S8_16x4 = "fter_x86_dot_u8s8_16x4_vnni"
AVX2_S8U8_8x4 = "fter_x86_dot_s8u8_8x4_avx2"

TensorIntrin.register(VNNI_S8U8_16x4, _dot(16, "int8", "uint8"), _vnni_impl("int8", "uint8"))
TensorIntrin.register(VNNI_U8S8_16x4, _dot(16, "uint8", "int8"), _vnni_impl("uint8", "int8"))
TensorIntrin.register(AVX2_S8U8_8x4, _dot(8, "int8", "uint8"),
                      _dot(8, "int8", "uint8", update=_avx2_s8u8))
AVX2_PAIR16_8x4 = "fter_x86_pair16_s8u8_8x4_avx2"
AVX2_WIDEN16_8x2 = "fter_x86_widen16_8x2_avx2"
TensorIntrin.register(AVX2_PAIR16_8x4, _pair16(), _pair16(_pair16_step))
TensorIntrin.register(AVX2_WIDEN16_8x2, _widen16(), _widen16(_widen16_step))
# attention on AVX2: int16 codes, one broadcast pair against an [8 x 2] tile (vpmaddwd, exact)
AVX2_I16_8x2 = "fter_x86_dot_i16_8x2_avx2"
TensorIntrin.register(AVX2_I16_8x2, _dot(8, "int16", "int16", group=2),
                      _dot(8, "int16", "int16", group=2, update=_i16))

# instruction set -> {operand order: (intrinsic, lanes)}
DOT_INTRINSICS = {
    "avx512_vnni": {"s8u8": (VNNI_S8U8_16x4, 16), "u8s8": (VNNI_U8S8_16x4, 16)},
    "avx2": {"s8u8": (AVX2_S8U8_8x4, 8)},
    "generic": {},
}
