#!/usr/bin/env python3
"""torch.randn on the CPU, re-implemented in NumPy to show exactly what it computes.

Diffusers draws the starting noise with `torch.randn(shape, generator=torch.Generator("cpu")
.manual_seed(seed))`. To get the same pictures from the same seed, the Swift port must draw
the same numbers. This file spells the algorithm out, and `check()` compares it to torch.

1. The generator is a 32-bit Mersenne Twister (MT19937) seeded with `init_genrand(seed)`
   (the seed is cut to its low 32 bits). NumPy's legacy RandomState uses the same generator
   and the same seeding, so we borrow its raw 32-bit outputs.

2. A float32 uniform in [0, 1) takes ONE 32-bit draw x and keeps its low 24 bits:
   u = (x & 0xFFFFFF) / 2**24.
   A float64 uniform takes TWO draws, hi then lo, forms (hi << 32) | lo, and keeps the low 53
   bits: u = (v & (2**53 - 1)) / 2**53.

3. randn of a float32 tensor with 16 or more elements (contiguous) fills the whole tensor with
   float32 uniforms first, then turns each block of 16 into 16 normals with Box-Muller:
   for j in 0..<8: u1 = 1 - data[j], u2 = data[j+8],
                   r = sqrt(-2 log u1), theta = 2 pi u2,
                   data[j] = r cos(theta), data[j+8] = r sin(theta).
   When the size is not a multiple of 16, the LAST 16 elements are refilled with 16 fresh
   uniforms and transformed again (they overlap the previous block, so those outputs change).

4. randn of a tensor with fewer than 16 elements takes another path: one float64 normal per
   element, from two float64 uniforms u1, u2 (4 draws):
   r = sqrt(-2 log(1 - u2)), theta = 2 pi u1, value = r cos(theta), cast to float32.
   The unused r sin(theta) is cached in the generator and returned by the NEXT such small-path
   normal, so the small path consumes draws only every other element, and its cache carries
   over between calls.

On x86 CPUs with AVX2, step 3 runs vectorised in float32 (torch's normal_fill_AVX2 with SLEEF
log/sin/cos); the results can differ from a scalar implementation in the last bit or two.
"""

from __future__ import annotations

import numpy as np


class TorchCPUGenerator:
    """The parts of torch.Generator("cpu") that randn uses."""

    def __init__(self, seed: int):
        # RandomState(int) seeds MT19937 with init_genrand(seed & 0xffffffff), like torch.
        self._mt = np.random.RandomState(seed & 0xFFFFFFFF)
        self._cached_normal: float | None = None  # the spare Box-Muller value of the small path

    def next_uint32(self, n: int = 1) -> np.ndarray:
        # randint over the full 32-bit range returns raw MT19937 outputs, in order.
        return self._mt.randint(0, 2**32, size=n, dtype=np.uint32).astype(np.uint64)

    def uniform_float32(self, n: int) -> np.ndarray:
        x = self.next_uint32(n)
        return ((x & 0xFFFFFF).astype(np.float32) * np.float32(2.0**-24)).astype(np.float32)

    def uniform_float64(self) -> float:
        hi, lo = (int(v) for v in self.next_uint32(2))
        v = (hi << 32) | lo
        return (v & ((1 << 53) - 1)) * 2.0**-53

    def normal_float64(self) -> float:
        if self._cached_normal is not None:
            value, self._cached_normal = self._cached_normal, None
            return value
        u1 = self.uniform_float64()
        u2 = self.uniform_float64()
        r = np.sqrt(-2.0 * np.log1p(-u2))
        theta = 2.0 * np.pi * u1
        self._cached_normal = float(r * np.sin(theta))
        return float(r * np.cos(theta))


def _box_muller_16(block: np.ndarray) -> None:
    """Turn 16 float32 uniforms into 16 normals, in place, as torch's normal_fill_16 does."""
    u1 = np.float32(1.0) - block[:8]
    u2 = block[8:].copy()
    radius = np.sqrt(np.float32(-2.0) * np.log(u1))
    theta = np.float32(2.0 * np.pi) * u2
    block[:8] = radius * np.cos(theta)
    block[8:] = radius * np.sin(theta)


def randn(shape: tuple[int, ...], generator: TorchCPUGenerator) -> np.ndarray:
    """torch.randn(shape, generator=...) for float32 on the CPU."""
    size = int(np.prod(shape))
    if size < 16:
        values = [np.float32(generator.normal_float64()) for _ in range(size)]
        return np.array(values, dtype=np.float32).reshape(shape)

    data = generator.uniform_float32(size)
    for start in range(0, size - 15, 16):
        _box_muller_16(data[start:start + 16])
    if size % 16 != 0:
        data[size - 16:] = generator.uniform_float32(16)
        _box_muller_16(data[size - 16:])
    return data.reshape(shape)


def check(verbose: bool = True) -> float:
    """Compare with torch for a few shapes and seeds; returns the largest absolute difference."""
    import torch

    worst = 0.0
    cases = [((1, 4, 8, 8), 0), ((1, 4, 8, 8), 42), ((1, 4, 64, 64), 42), ((1, 4, 5, 5), 7),
             ((3,), 42), ((15,), 42), ((16,), 42), ((17,), 42)]
    for shape, seed in cases:
        expected = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed)).numpy()
        got = randn(shape, TorchCPUGenerator(seed))
        diff = float(np.abs(expected - got).max())
        worst = max(worst, diff)
        if verbose:
            print(f"  randn{shape} seed {seed}: max |torch - numpy| = {diff:.3g}")

    # Two small calls in a row share the cached Box-Muller value.
    g_torch = torch.Generator("cpu").manual_seed(42)
    g_np = TorchCPUGenerator(42)
    for n in (3, 3, 5):
        expected = torch.randn((n,), generator=g_torch).numpy()
        diff = float(np.abs(expected - randn((n,), g_np)).max())
        worst = max(worst, diff)
    if verbose:
        print(f"  consecutive small calls: max |torch - numpy| = {diff:.3g}")
    return worst


if __name__ == "__main__":
    print(f"largest difference: {check():.3g}")
