"""Delta codecs of the Flotilla wire protocol (docs/protocol.md, "Update (delta) format"), in numpy.

Every encoded delta starts with the same 12-byte header, all little-endian:
  bytes 0-2  magic b"FLD"
  byte  3    codec id: f32 = 1, f16 = 2, int8 = 3, topk = 4
  bytes 4-7  u32 number of parameters n (the model's flat length)
  bytes 8-11 f32 codec parameter (0 for f32 and f16, block size for int8, kept fraction for topk)
"""
import math
import struct

import numpy as np

CODEC_IDS = {"f32": 1, "f16": 2, "int8": 3, "topk": 4}
HALF_MAX = 65504.0


def header(codec, n, param=0.0):
    return b"FLD" + struct.pack("<BIf", CODEC_IDS[codec], n, param)


def encode_f32(delta):
    """Header, then n f32 values."""
    return header("f32", delta.size) + delta.astype("<f4").tobytes()


def encode_f16(delta):
    """Header, then n IEEE binary16 values, round to nearest even; finite values beyond the half
    range saturate to +-65504 (the spec forbids turning a finite value into infinity)."""
    return header("f16", delta.size) + np.clip(delta, -HALF_MAX, HALF_MAX).astype("<f2").tobytes()


def encode_int8(delta, block_size=256, rng=None):
    """Header (param = block size), then one (min f32, scale f32) pair per block of block_size values,
    then n u8 codes; a value decodes as min + code * scale. Stochastic rounding when rng is given."""
    n = delta.size
    blocks = math.ceil(n / block_size)
    pairs = bytearray()
    codes = np.empty(n, dtype=np.uint8)
    for b in range(blocks):
        part = delta[b * block_size:(b + 1) * block_size].astype(np.float64)
        lo, hi = float(part.min()), float(part.max())
        scale = np.float32((hi - lo) / 255)
        while lo + 255 * float(scale) < hi:  # the largest code must reach the block maximum
            scale = np.nextafter(scale, np.float32(np.inf))
        t = (part - lo) / float(scale) if scale > 0 else np.zeros_like(part)
        q = np.floor(t + rng.random(part.size)) if rng is not None else np.round(t)
        codes[b * block_size:b * block_size + part.size] = np.clip(q, 0, 255)
        pairs += struct.pack("<ff", lo, float(scale))
    return header("int8", n, block_size) + bytes(pairs) + codes.tobytes()


def encode_topk(delta, fraction):
    """Header (param = fraction), then u32 k, k u32 indices (strictly increasing), k f32 values.
    Keeps the k = ceil(fraction * n) largest magnitudes (at least 1)."""
    n = delta.size
    k = min(n, max(1, math.ceil(fraction * n - 1e-9))) if n else 0
    order = np.argsort(-np.abs(delta), kind="stable")[:k]
    idx = np.sort(order).astype("<u4")
    return header("topk", n, fraction) + struct.pack("<I", k) + idx.tobytes() + delta[idx].astype("<f4").tobytes()


def encode(codec, delta, plan, rng=None):
    if codec == "f32":
        return encode_f32(delta)
    if codec == "f16":
        return encode_f16(delta)
    if codec == "int8":
        return encode_int8(delta, 256, rng)
    if codec == "topk":
        return encode_topk(delta, plan.get("topkFraction", 0.01))
    raise ValueError(f"codec {codec} is not implemented by this device")
