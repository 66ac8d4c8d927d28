#ifndef CPU_KERNELS_H
#define CPU_KERNELS_H

// The few loops where almost all of the arithmetic happens, compiled once per instruction set.
//
// Swift compiles a whole module for one processor, and a binary built for AVX2 stops with
// "illegal instruction" on a CPU without it. These C functions are different: each variant is
// compiled with its own instruction set (a `target` attribute, no compiler flag), the package
// itself is built for the platform's default target, and `InstructionSet` (TensorCore) asks the
// processor once which variant it can run. The kernels are written once, in kernel_template.h,
// and instantiated for each vector width in kernel_variants.c.

#include <stdint.h>

/// The instruction sets there are kernels for, fastest last.
typedef enum {
    /// What every CPU of the architecture has: SSE2 on x86-64 (4 floats a vector, no fused
    /// multiply-add), NEON on arm64 (4 floats, with fused multiply-add).
    cpu_variant_baseline = 0,
    /// x86-64 with AVX2, FMA and F16C (Intel since 2013, AMD since 2015): 8 floats a vector.
    cpu_variant_avx2 = 1,
    /// x86-64 with AVX-512 F/VL (Intel servers since 2017, AMD Zen 4 and 5): 16 floats a
    /// vector and 32 vector registers.
    cpu_variant_avx512 = 2,
} cpu_variant;

/// One register tile of a matrix product: `C[0..<rows, 0..<columns] (+)= A · B` over `depth` steps.
///
/// `a` is a packed panel of A: for each step, `tile_rows` numbers (one column of the panel).
/// `b` is a packed panel of B: for each step, 16 numbers; a 32-column tile reads a second
/// 16-column panel `b_panel_stride` numbers after the first (pass 0 when `columns` ≤ 16).
/// The first slice of the depth overwrites C (`overwrite` = 1) and adds `row_bias[r]` or
/// `column_bias[j]` (either may be NULL); later slices add to C. Rows and columns past
/// `rows`/`columns` are computed (the panels are zero-padded) but never stored.
typedef void (*cpu_gemm_tile_function)(long depth, const float *a, const float *b, long b_panel_stride,
                                       float *c, long ldc, long rows, long columns, int overwrite,
                                       const float *row_bias, const float *column_bias);

/// The activation functions (and their derivatives, for the backward pass) `activation` computes.
typedef enum {
    /// x · σ(x)
    cpu_silu = 0,
    /// x · σ(1.702·x), CLIP's approximation of GELU
    cpu_quick_gelu = 1,
    /// x/2 · (1 + erf(x/√2)), exact GELU
    cpu_gelu = 2,
    cpu_silu_derivative = 3,
    cpu_quick_gelu_derivative = 4,
    cpu_gelu_derivative = 5,
} cpu_activation;

/// Everything one variant offers.
typedef struct {
    /// "avx512", "avx2" or "baseline".
    const char *name;
    /// Floats in one vector register.
    int vector_width;
    /// Rows of the register tile, which is also the width of a packed panel of A.
    int tile_rows;
    /// Columns of the full register tile: 16 or 32 (two packed 16-column panels of B).
    int tile_columns;
    /// The full `tile_rows x tile_columns` tile.
    cpu_gemm_tile_function gemm_tile;
    /// The same with 16 columns, for products whose B comes in single panels (attention).
    cpu_gemm_tile_function gemm_tile_16;
    /// e^x of `count` floats in place (within 1 ulp of expf; see kernel_template.h).
    void (*exp)(float *values, long count);
    /// `y[i] = f(x[i])` for the `cpu_activation` f, `count` floats (`y` may be `x`).
    void (*activation)(int kind, const float *x, float *y, long count);
    /// `count` IEEE half-precision numbers at `source` (any alignment) to floats, exactly.
    void (*widen_half)(const void *source, float *destination, long count);
} cpu_kernel_set;

/// 1 if this processor and its operating system can run `variant`'s instructions, else 0.
int cpu_supports(cpu_variant variant);

/// The kernels of `variant`, or NULL if this build has none for it (AVX-512 or AVX2 on arm64).
/// It does not check `cpu_supports`: calling a variant the CPU lacks stops the program.
const cpu_kernel_set *cpu_kernels(cpu_variant variant);

/// For tests on CPUs without AVX-512: the AVX-512 variant's own source (16-float vectors, its
/// register tile) compiled for AVX2. It runs the same operations in the same order, so it checks
/// the code that the AVX-512 machine runs everywhere but in the choice of machine instructions.
/// NULL where AVX2 itself is not compiled in.
const cpu_kernel_set *cpu_kernels_avx512_on_avx2(void);

#endif
