// The kernels, written once for any vector width. kernel_variants.c includes this file once per
// instruction set, after defining (this file undefines them again at its end):
//
//   KERNEL(name)   the name of each function for this variant (name_avx2, ...)
//   WIDTH          floats per vector: 4, 8 or 16
//   TILE_ROWS      rows of the register tile (and width of A's packed panels)
//   TILE_COLUMNS   columns of the full register tile: 16 or 32
//   FUSED          1 where the CPU has fused multiply-add, else 0
//   NATIVE_HALF    1 where the CPU converts half-precision floats itself, else 0
//
// The vectors are clang's extended vector types: `a * b` on two of them multiplies every lane,
// and the compiler turns them into the instructions of the function's target.

typedef float KERNEL(vfloat) __attribute__((ext_vector_type(WIDTH)));
typedef int32_t KERNEL(vint) __attribute__((ext_vector_type(WIDTH)));
typedef uint32_t KERNEL(vbits) __attribute__((ext_vector_type(WIDTH)));
#define vfloat KERNEL(vfloat)
#define vint KERNEL(vint)
#define vbits KERNEL(vbits)

static inline __attribute__((always_inline)) vfloat KERNEL(load)(const float *p) {
    vfloat v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void KERNEL(store)(float *p, vfloat v) {
    __builtin_memcpy(p, &v, sizeof v);
}

/// `a · b + c`, rounded once where the CPU can (fused), else rounded twice. Every variant with
/// FMA therefore gives bit-identical products and exponentials.
static inline __attribute__((always_inline)) vfloat KERNEL(multiply_add)(vfloat a, vfloat b, vfloat c) {
#if FUSED
    return __builtin_elementwise_fma(a, b, c);
#else
    return a * b + c;
#endif
}

/// Lanes of `when_true` where `mask` is all ones, of `when_false` where it is zero.
static inline __attribute__((always_inline)) vfloat KERNEL(select)(vint mask, vfloat when_true, vfloat when_false) {
    return (vfloat)((mask & (vint)when_true) | (~mask & (vint)when_false));
}

// MARK: - Matrix product: the register tile

/// The micro-kernel: C[rows, columns] (+)= A panel · B panel(s), for a tile of `vectors` vectors per
/// row (`vectors · WIDTH` = 16 or 32 columns), with all `TILE_ROWS x vectors` accumulators in
/// registers while the depth streams past.
///
/// Each step loads one row of B's panel (`vectors` vectors), broadcasts each of the `TILE_ROWS`
/// numbers of A's panel in turn and does `TILE_ROWS · vectors` multiply-adds. Each output's sum
/// runs over the depth in order, one multiply-add at a time, whatever the tile's shape: so every
/// variant with FMA gives bit-identical products, and only the baseline on x86-64 (no FMA) rounds
/// differently.
static inline __attribute__((always_inline))
void KERNEL(gemm_tile_body)(const int vectors, long depth, const float *a, const float *b, long b_panel_stride,
                            float *c, long ldc, long rows, long columns, int overwrite,
                            const float *row_bias, const float *column_bias) {
    enum { most = TILE_COLUMNS / WIDTH };
    // Ask for the rows of C now: the loop below takes long enough for them to arrive from memory,
    // and the stores at the end then find them in the cache instead of stalling.
    for (long r = 0; r < rows; r++) {
        __builtin_prefetch(c + r * ldc, 1, 3);
        __builtin_prefetch(c + r * ldc + columns - 1, 1, 3);
    }
    // Vector v of a row of B: columns v·WIDTH ..< (v+1)·WIDTH, which sit in 16-column panel
    // (v·WIDTH)/16 at offset (v·WIDTH) mod 16.
    const float *panel[most];
#pragma clang loop unroll(full)
    for (int v = 0; v < most; v++) {
        panel[v] = b + ((v * WIDTH) / 16) * b_panel_stride + (v * WIDTH) % 16;
    }
    vfloat sum[TILE_ROWS][most];
#pragma clang loop unroll(full)
    for (int r = 0; r < TILE_ROWS; r++) {
#pragma clang loop unroll(full)
        for (int v = 0; v < most; v++) sum[r][v] = 0;
    }
    for (long p = 0; p < depth; p++) {
        vfloat row_of_b[most];
#pragma clang loop unroll(full)
        for (int v = 0; v < most; v++) {
            if (v < vectors) row_of_b[v] = KERNEL(load)(panel[v] + 16 * p);
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < TILE_ROWS; r++) {
            const vfloat a_r = a[TILE_ROWS * p + r];
#pragma clang loop unroll(full)
            for (int v = 0; v < most; v++) {
                if (v < vectors) sum[r][v] = KERNEL(multiply_add)(a_r, row_of_b[v], sum[r][v]);
            }
        }
    }

    // Store the valid rows: whole vectors when the tile is full width, else lane by lane. The
    // bias is added first, then the old C (as the plain GEMM's `bias + Σ` then `+ C`).
#pragma clang loop unroll(full)
    for (int r = 0; r < TILE_ROWS; r++) {
        if (r >= rows) break;
        float *out = c + r * ldc;
        if (columns == vectors * WIDTH) {
#pragma clang loop unroll(full)
            for (int v = 0; v < most; v++) {
                if (v >= vectors) break;
                vfloat y = sum[r][v];
                if (row_bias) y += row_bias[r];
                else if (column_bias) y += KERNEL(load)(column_bias + v * WIDTH);
                if (!overwrite) y += KERNEL(load)(out + v * WIDTH);
                KERNEL(store)(out + v * WIDTH, y);
            }
        } else {
            float lanes[TILE_COLUMNS];
#pragma clang loop unroll(full)
            for (int v = 0; v < most; v++) KERNEL(store)(lanes + v * WIDTH, sum[r][v]);
            for (long j = 0; j < columns; j++) {
                float y = lanes[j] + (row_bias ? row_bias[r] : column_bias ? column_bias[j] : 0.0f);
                out[j] = overwrite ? y : y + out[j];
            }
        }
    }
}

static void KERNEL(gemm_tile)(long depth, const float *a, const float *b, long b_panel_stride, float *c, long ldc,
                              long rows, long columns, int overwrite, const float *row_bias, const float *column_bias) {
    KERNEL(gemm_tile_body)(TILE_COLUMNS / WIDTH, depth, a, b, b_panel_stride, c, ldc, rows, columns, overwrite,
                           row_bias, column_bias);
}

static void KERNEL(gemm_tile_16)(long depth, const float *a, const float *b, long b_panel_stride, float *c, long ldc,
                                 long rows, long columns, int overwrite, const float *row_bias,
                                 const float *column_bias) {
    KERNEL(gemm_tile_body)(16 / WIDTH, depth, a, b, b_panel_stride, c, ldc, rows, columns, overwrite,
                           row_bias, column_bias);
}

// MARK: - e^x

/// e^x for a vector, within 1 ulp of libm's expf (the tests check the whole range). The method
/// (Cody & Waite range reduction, as in the Cephes library):
///   e^x = 2^n · e^r   with n = round(x / ln 2) and r = x − n·ln 2, so |r| ≤ ln 2 / 2;
///   e^r ≈ 1 + r + r²·P(r), P a degree-5 polynomial fitted on that small interval;
///   2^n is built directly as the bits of a float: exponent field n + 127, mantissa 0.
/// Below −87.3, where the true value leaves the normal floats, the result is 0; above 88.37 it
/// stays at e^88.37 ≈ 2.4e38 instead of growing to infinity.
static inline __attribute__((always_inline)) vfloat KERNEL(exp_vector)(vfloat x) {
    const vfloat high = 88.3762626647949f, low = -87.3365447504f;
    const vint above = x > high, below = x < low;
    vfloat clamped = KERNEL(select)(above, high, x);
    clamped = KERNEL(select)(below, low, clamped);

    // Adding 1.5·2²³ rounds to the nearest integer, and leaves that integer in the low mantissa
    // bits of `shifted`, ready to become an exponent field.
    const vfloat magic = 12582912.0f;
    const vfloat shifted = clamped * 1.44269504088896341f + magic;
    const vfloat n = shifted - magic;
    // r = x − n·ln 2, with ln 2 split in a short head (exact in n·head) and a tail.
    const vfloat r = clamped - n * 0.693359375f + n * 2.12194440e-4f;

    // Horner's rule, one multiply-add per coefficient: p ← c + p·r.
    vfloat p = 1.9875691500e-4f;
    p = KERNEL(multiply_add)(p, r, 1.3981999507e-3f);
    p = KERNEL(multiply_add)(p, r, 8.3334519073e-3f);
    p = KERNEL(multiply_add)(p, r, 4.1665795894e-2f);
    p = KERNEL(multiply_add)(p, r, 1.6666665459e-1f);
    p = KERNEL(multiply_add)(p, r, 5.0000001201e-1f);
    const vfloat exp_r = KERNEL(multiply_add)(p, r * r, r + 1);

    // The bits of `shifted` are 0x4B400000 + n; make them (n + 127) << 23, the float 2^n.
    const vbits two_to_n = ((vbits)shifted + (vbits)(127u - 0x4B400000u)) << 23;
    return KERNEL(select)(below, 0, exp_r * (vfloat)two_to_n);
}

static void KERNEL(exp)(float *values, long count) {
    long i = 0;
    for (; i + WIDTH <= count; i += WIDTH) KERNEL(store)(values + i, KERNEL(exp_vector)(KERNEL(load)(values + i)));
    if (i < count) {
        // The last few numbers go through the same formula, in a zero-padded vector.
        float lanes[WIDTH] = {0};
        for (long j = i; j < count; j++) lanes[j - i] = values[j];
        KERNEL(store)(lanes, KERNEL(exp_vector)(KERNEL(load)(lanes)));
        for (long j = i; j < count; j++) values[j] = lanes[j - i];
    }
}

// MARK: - Activations

/// erf by Abramowitz & Stegun 7.1.26: `erf(|x|) ≈ 1 − (a₁t + a₂t² + a₃t³ + a₄t⁴ + a₅t⁵)·e^(−x²)` with
/// `t = 1 / (1 + p·|x|)`, absolute error below 1.5e-7 (about one float ulp of the result near 1),
/// the sign restored after.
static inline __attribute__((always_inline)) vfloat KERNEL(erf_vector)(vfloat x) {
    const vint negative = x < 0.0f;
    const vfloat magnitude = KERNEL(select)(negative, -x, x);
    const vfloat t = 1.0f / (1.0f + 0.3275911f * magnitude);
    vfloat poly = 1.061405429f;
    poly = poly * t - 1.453152027f;
    poly = poly * t + 1.421413741f;
    poly = poly * t - 0.284496736f;
    poly = poly * t + 0.254829592f;
    const vfloat positive = 1.0f - poly * t * KERNEL(exp_vector)(-magnitude * magnitude);
    return KERNEL(select)(negative, -positive, positive);
}

/// `f(x)` of one activation (or its derivative) for a vector; `kind` is a `cpu_activation`.
static inline __attribute__((always_inline)) vfloat KERNEL(activation_vector)(int kind, vfloat x) {
    switch (kind) {
    case cpu_silu:
    case cpu_quick_gelu: {
        // x · σ(a·x) = x / (1 + e^(−a·x)), a = 1 for SiLU, 1.702 for quick GELU
        const float slope = kind == cpu_silu ? 1.0f : 1.702f;
        return x / (1.0f + KERNEL(exp_vector)(-slope * x));
    }
    case cpu_gelu:
        // x/2 · (1 + erf(x/√2))
        return 0.5f * x * (1.0f + KERNEL(erf_vector)(x * 0.70710678118654752f));
    case cpu_silu_derivative:
    case cpu_quick_gelu_derivative: {
        // σ(a·x) · (1 + a·x · (1 − σ(a·x)))
        const float slope = kind == cpu_silu_derivative ? 1.0f : 1.702f;
        const vfloat ax = slope * x, sigma = 1.0f / (1.0f + KERNEL(exp_vector)(-ax));
        return sigma * (1.0f + ax * (1.0f - sigma));
    }
    default:
        // cpu_gelu_derivative: Φ(x) + x·φ(x) = (1 + erf(x/√2))/2 + x · e^(−x²/2) / √(2π)
        return 0.5f * (1.0f + KERNEL(erf_vector)(x * 0.70710678118654752f))
            + x * KERNEL(exp_vector)(-0.5f * x * x) * 0.3989422804014327f;
    }
}

static inline __attribute__((always_inline))
void KERNEL(activation_loop)(const int kind, const float *x, float *y, long count) {
    long i = 0;
    for (; i + WIDTH <= count; i += WIDTH) KERNEL(store)(y + i, KERNEL(activation_vector)(kind, KERNEL(load)(x + i)));
    if (i < count) {
        // The last few numbers go through the same formula, in a zero-padded vector.
        float lanes[WIDTH] = {0};
        for (long j = i; j < count; j++) lanes[j - i] = x[j];
        KERNEL(store)(lanes, KERNEL(activation_vector)(kind, KERNEL(load)(lanes)));
        for (long j = i; j < count; j++) y[j] = lanes[j - i];
    }
}

/// One loop per kind, each with its formula inlined.
static void KERNEL(activation)(int kind, const float *x, float *y, long count) {
    switch (kind) {
    case cpu_silu: KERNEL(activation_loop)(cpu_silu, x, y, count); break;
    case cpu_quick_gelu: KERNEL(activation_loop)(cpu_quick_gelu, x, y, count); break;
    case cpu_gelu: KERNEL(activation_loop)(cpu_gelu, x, y, count); break;
    case cpu_silu_derivative: KERNEL(activation_loop)(cpu_silu_derivative, x, y, count); break;
    case cpu_quick_gelu_derivative: KERNEL(activation_loop)(cpu_quick_gelu_derivative, x, y, count); break;
    default: KERNEL(activation_loop)(cpu_gelu_derivative, x, y, count); break;
    }
}

// MARK: - Half precision

/// IEEE half-precision to float, exactly. With F16C (or on arm64) the processor converts; elsewhere
/// the bits are moved into place: a half's exponent and mantissa, shifted left by 13, are the bits
/// of a float 2¹¹² times too small (for normal and subnormal halves alike), so one multiplication
/// by 2¹¹² rescales them exactly; infinities and NaNs (exponent all ones) keep all-ones exponents.
static inline __attribute__((always_inline)) vfloat KERNEL(widen_half_vector)(const unsigned char *source) {
#if NATIVE_HALF
    typedef _Float16 vhalf __attribute__((ext_vector_type(WIDTH)));
    vhalf h;
    __builtin_memcpy(&h, source, sizeof h);
    return __builtin_convertvector(h, vfloat);
#else
    typedef uint16_t vhalfbits __attribute__((ext_vector_type(WIDTH)));
    vhalfbits raw;
    __builtin_memcpy(&raw, source, sizeof raw);
    const vbits h = __builtin_convertvector(raw, vbits);
    const vbits sign = (h & 0x8000u) << 16, magnitude = h & 0x7FFFu;
    const vfloat scaled = (vfloat)(magnitude << 13) * 0x1p112f;
    const vint special = (vint)(magnitude >= 0x7C00u);
    const vfloat special_value = (vfloat)((magnitude << 13) | 0x7F800000u);
    return (vfloat)((vbits)KERNEL(select)(special, special_value, scaled) | sign);
#endif
}

static void KERNEL(widen_half)(const void *source, float *destination, long count) {
    const unsigned char *bytes = source;
    long i = 0;
    for (; i + WIDTH <= count; i += WIDTH) KERNEL(store)(destination + i, KERNEL(widen_half_vector)(bytes + 2 * i));
    if (i < count) {
        // The last few numbers go through the same conversion, in a zero-padded vector.
        unsigned char halves[2 * WIDTH] = {0};
        float lanes[WIDTH];
        __builtin_memcpy(halves, bytes + 2 * i, (size_t)(2 * (count - i)));
        KERNEL(store)(lanes, KERNEL(widen_half_vector)(halves));
        for (long j = i; j < count; j++) destination[j] = lanes[j - i];
    }
}

#undef vfloat
#undef vint
#undef vbits
#undef KERNEL
#undef WIDTH
#undef TILE_ROWS
#undef TILE_COLUMNS
#undef FUSED
#undef NATIVE_HALF
