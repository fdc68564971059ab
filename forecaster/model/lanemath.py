"""Branch-free float math for the lane loops of the cell and the trainer: exp, sigmoid, tanh.

A loop over lanes vectorises only when its body has no branch and no call; this numba has no
vector math library and `math.exp` is a call, so exp is built here by range reduction, a
polynomial and exponent bits (known accuracy: about 1 ulp), and sigmoid and tanh on top of it
(within 4 ulps of torch, NaN kept). Everything works in the precision of its arguments.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

#: numba's fastmath flags for all cell and trainer code: only 'contract' (a·b + c may become one
#: fused multiply-add). Nothing that reorders sums, so every lane does the same arithmetic in the
#: same order and a ticker's result cannot depend on its lane or its neighbours.
FLOAT_FLAGS = {"contract"}


@intrinsic
def _float_bits(typingctx, value):  # type: ignore[no-untyped-def]
    """The IEEE 754 bits of a float32 or float64 as an integer of its width (a free reinterpretation)."""
    if not isinstance(value, types.Float):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.IntType(value.bitwidth))

    return types.Integer.from_bitwidth(value.bitwidth)(value), codegen


@intrinsic
def _bits_float(typingctx, bits):  # type: ignore[no-untyped-def]
    """The float32 or float64 whose IEEE 754 bits are the int32 or int64 `bits`."""
    if bits not in (types.int32, types.int64):
        return None
    target = types.float32 if bits == types.int32 else types.float64

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], context.get_value_type(target))

    return target(bits), codegen


@intrinsic
def like(typingctx, value, reference):  # type: ignore[no-untyped-def]
    """The float constant `value` in the precision of `reference` (a float, or an array of floats),
    so that float32 code stays float32: a bare Python float would widen it to float64."""
    target = reference.dtype if isinstance(reference, types.Array) else reference
    if not isinstance(target, types.Float):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return context.cast(builder, args[0], signature.args[0], target)

    return target(value, reference), codegen


@intrinsic
def _at_least(typingctx, value, floor):  # type: ignore[no-untyped-def]
    """max(value, floor) of two floats of one precision as a single select, NaN kept as NaN."""
    if not isinstance(value, types.Float) or floor != value:
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        below = builder.fcmp_ordered("<", args[0], args[1])
        return builder.select(below, args[1], args[0])

    return value(value, floor), codegen


# exp by range reduction x = k·ln 2 + r, |r| ≤ ln(2)/2: exp(x) = 2^k · exp(r), with exp(r) − 1 from
# its Taylor series, truncated where the next term is under half an ulp (degree 13 in float64,
# 7 in float32), and 2^k built from exponent bits. No table, branch or call, so a loop over lanes
# vectorises. Constants per precision: ln 2 split in two (Cody and Waite's) so that k · hi is
# exact, the shift 1.5 · 2^mantissa_bits whose addition rounds to an integer kept in the low bits,
# and the lowest x whose 2^k the exponent field still holds (exp(x) is then ≈ 0 anyway).
_LOG2_E = 1.4426950408889634
_LN2_HI_64, _LN2_LO_64 = 0.6931471803691238, 1.9082149292705877e-10
_SHIFT_64 = 1.5 * 2.0**52
_FLOOR_64 = -708.0  # exp(-708) ≈ 3.3e-308
_T64 = tuple(1.0 / math.factorial(n) for n in range(1, 14))
_LOG2_E_32 = np.float32(_LOG2_E)
_LN2_HI_32, _LN2_LO_32 = np.float32(0.693359375), np.float32(-2.12194440e-4)
_SHIFT_32 = np.float32(1.5 * 2.0**23)
_FLOOR_32 = np.float32(-87.0)  # exp(-87) ≈ 1.6e-38
_T32 = tuple(np.float32(1.0 / math.factorial(n)) for n in range(1, 8))


@numba.njit(cache=True, inline="always", fastmath=FLOAT_FLAGS, error_model="numpy")
def _exp_parts_float64(x: float) -> tuple[float, float]:
    x_floor = _at_least(x, _FLOOR_64)
    shifted = x_floor * _LOG2_E + _SHIFT_64
    k = shifted - _SHIFT_64  # round(x / ln 2), exactly
    r = (x_floor - k * _LN2_HI_64) - k * _LN2_LO_64
    t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13 = _T64
    # Estrin's scheme: 4 multiply-adds deep instead of Horner's 13, as the cell's steps wait on it.
    r2 = r * r
    r4 = r2 * r2
    low = (t1 + t2 * r) + (t3 + t4 * r) * r2 + ((t5 + t6 * r) + (t7 + t8 * r) * r2) * r4
    high = (t9 + t10 * r) + (t11 + t12 * r) * r2 + t13 * r4
    q = (low + high * (r4 * r4)) * r
    # The low bits of `shifted` hold k + 2^51; shifted left by 52 only k + 1023, the exponent field.
    return _bits_float((_float_bits(shifted) + 1023) << 52), q


@numba.njit(cache=True, inline="always", fastmath=FLOAT_FLAGS, error_model="numpy")
def _exp_parts_float32(x: np.float32) -> tuple[np.float32, np.float32]:
    x_floor = _at_least(x, _FLOOR_32)
    shifted = x_floor * _LOG2_E_32 + _SHIFT_32
    k = shifted - _SHIFT_32
    r = (x_floor - k * _LN2_HI_32) - k * _LN2_LO_32
    t1, t2, t3, t4, t5, t6, t7 = _T32
    r2 = r * r
    q = ((t1 + t2 * r) + (t3 + t4 * r) * r2 + ((t5 + t6 * r) + t7 * r2) * (r2 * r2)) * r
    return _bits_float(np.int32((_float_bits(shifted) + 127) << 23)), q


def _exp_parts(x: float) -> tuple[float, float]:
    """(2^k, q) with exp(x) = 2^k · (1 + q), for x ≤ 0 (NaN stays NaN), in x's precision,
    within about 1 ulp; compiled code only."""
    raise TypeError("_exp_parts runs in compiled code only")


@overload(_exp_parts, inline="always")
def _exp_parts_for(x):  # type: ignore[no-untyped-def]
    if x == types.float32:
        return lambda x: _exp_parts_float32(x)
    if x == types.float64:
        return lambda x: _exp_parts_float64(x)
    return None


@numba.njit(cache=True, inline="always", fastmath=FLOAT_FLAGS, error_model="numpy")
def sigmoid(z: float) -> float:
    """1 / (1 + e^−z) from e = exp(−|z|) ≤ 1, so nothing overflows (as torch.sigmoid)."""
    one = like(1.0, z)
    scale, q = _exp_parts(-abs(z))
    e = scale * q + scale
    s = one / (one + e)
    return s if z >= like(0.0, z) else e * s


@numba.njit(cache=True, inline="always", fastmath=FLOAT_FLAGS, error_model="numpy")
def tanh(z: float) -> float:
    """tanh(z) = −m / (2 + m) with m = exp(−2|z|) − 1, signed as z; m comes without the
    cancellation of exp − 1, so small |z| keep their relative accuracy."""
    two = like(2.0, z)
    scale, q = _exp_parts(-two * abs(z))
    m = scale * q + (scale - like(1.0, z))
    return math.copysign(-m / (two + m), z)
