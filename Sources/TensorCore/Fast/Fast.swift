/// The fast version of every tensor operation: the same numbers as `Reference`, up to the order in
/// which floats are added, one to two orders of magnitude sooner.
///
/// Read `Reference` first; everything here is that, rearranged for the machine:
/// - `GEMM*.swift`: the matrix product, cut into cache-sized blocks, operands packed into the
///   order a 6x16 register tile of SIMD vectors reads them, tiles shared out to all cores.
/// - `Fast+Conv2d.swift`: convolution as a matrix product over image patches (implicit im2col).
/// - `Fast+Attention.swift`: attention computed transposed, so the softmax works on 16 queries
///   at once and feeds the second product without a copy.
/// - `Fast+Normalization.swift`, `Fast+Softmax.swift`, `Fast+Activations.swift`,
///   `Fast+Elementwise.swift`, `Fast+Upsample.swift`, `Fast+Embedding.swift`: eight numbers at a
///   time on all cores, with a vector `exp` (`VectorExp.swift`).
/// - `Parallel.swift`: sharing work out to the cores; `MemoryHints.swift`: what the tensor core
///   asks of the memory system.
///
/// Each function is tested against its `Reference` twin on awkward shapes. `NOTES.md` beside these
/// files says what each trick bought, measured.
public enum Fast {}
