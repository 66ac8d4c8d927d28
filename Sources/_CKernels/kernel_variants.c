// Each instruction set's kernels: kernel_template.h compiled once per variant, inside a
// `#pragma clang attribute` region that gives every function of that copy its target. Nothing
// here is compiled with a command-line flag, so the package builds for the default target and
// each variant runs only where `cpu_supports` says it can.

#include "cpu_kernels.h"
#include <stddef.h>

// The formulas say exactly where a multiply-add is fused (`multiply_add`); the compiler must not
// fuse any other `a * b + c` on its own, or variants would round differently.
#pragma clang fp contract(off)

// MARK: - Baseline: SSE2 on x86-64 (no FMA, no half conversion), NEON on arm64

#define KERNEL(name) name##_baseline
#define WIDTH 4
#define TILE_ROWS TILE_ROWS_BASELINE
#define TILE_COLUMNS 16
#if defined(__aarch64__)
// 6 rows x 4 vectors: 24 accumulators, 4 vectors of B and a broadcast of A in NEON's 32 registers.
#define TILE_ROWS_BASELINE 6
#define FUSED 1
#define NATIVE_HALF 1
#else
// 2 rows x 4 vectors: 8 accumulators, 4 vectors of B, a broadcast of A and a product (SSE has no
// three-operand instructions) in x86-64's 16 registers.
#define TILE_ROWS_BASELINE 2
#define FUSED 0
#define NATIVE_HALF 0
#endif
#include "kernel_template.h"

static const cpu_kernel_set baseline = {
    "baseline", 4, TILE_ROWS_BASELINE, 16, gemm_tile_baseline, gemm_tile_16_baseline, exp_baseline, activation_baseline,
    widen_half_baseline,
};

#if defined(__x86_64__)

// MARK: - AVX2 + FMA + F16C

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define KERNEL(name) name##_avx2
#define WIDTH 8
// 6 rows x 2 vectors: 12 accumulators, 2 vectors of B and one broadcast of A fill the 16 registers.
#define TILE_ROWS 6
#define TILE_COLUMNS 16
#define FUSED 1
#define NATIVE_HALF 1
#include "kernel_template.h"

// The AVX-512 variant's source, compiled for AVX2 (see cpu_kernels_avx512_on_avx2). Its inline
// helpers pass 16-float vectors, which AVX2 would pass differently across a call; they are always
// inlined, so no such call exists, and the compiler's warning about it is silenced.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpsabi"
#define KERNEL(name) name##_avx512_on_avx2
#define WIDTH 16
#define TILE_ROWS 14
#define TILE_COLUMNS 32
#define FUSED 1
#define NATIVE_HALF 1
#include "kernel_template.h"
#pragma clang diagnostic pop
#pragma clang attribute pop

// MARK: - AVX-512

#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx2,fma,f16c"))), apply_to = function)
#define KERNEL(name) name##_avx512
#define WIDTH 16
// 14 rows x 2 vectors (32 columns, two packed panels of B): 28 accumulators, 2 vectors of B and
// one broadcast of A in the 32 registers.
#define TILE_ROWS 14
#define TILE_COLUMNS 32
#define FUSED 1
#define NATIVE_HALF 1
#include "kernel_template.h"
#pragma clang attribute pop

static const cpu_kernel_set avx2 = {
    "avx2", 8, 6, 16, gemm_tile_avx2, gemm_tile_16_avx2, exp_avx2, activation_avx2,
    widen_half_avx2,
};
static const cpu_kernel_set avx512 = {
    "avx512", 16, 14, 32, gemm_tile_avx512, gemm_tile_16_avx512, exp_avx512, activation_avx512,
    widen_half_avx512,
};
static const cpu_kernel_set avx512_on_avx2 = {
    "avx512", 16, 14, 32, gemm_tile_avx512_on_avx2, gemm_tile_16_avx512_on_avx2, exp_avx512_on_avx2, activation_avx512_on_avx2,
    widen_half_avx512_on_avx2,
};

#endif

const cpu_kernel_set *cpu_kernels(cpu_variant variant) {
    switch (variant) {
    case cpu_variant_baseline: return &baseline;
#if defined(__x86_64__)
    case cpu_variant_avx2: return &avx2;
    case cpu_variant_avx512: return &avx512;
#endif
    default: return NULL;
    }
}

const cpu_kernel_set *cpu_kernels_avx512_on_avx2(void) {
#if defined(__x86_64__)
    return &avx512_on_avx2;
#else
    return NULL;
#endif
}
