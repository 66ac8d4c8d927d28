// e^x for many floats at once, for softmax and the sigmoid inside SiLU.
//
// libm's `expf` handles one number per call; attention at 512x512 needs a few hundred million
// exponentials per denoising step. The vector version (`exp_vector` in
// Sources/_CKernels/kernel_template.h, one copy per instruction set) works on a whole register
// at once, within 1 ulp of `expf` (tested against it over the whole range):
//   e^x = 2^n · e^r   with n = round(x / ln 2) and r = x − n·ln 2, so |r| ≤ ln 2 / 2;
//   e^r ≈ 1 + r + r²·P(r), P a degree-5 polynomial fitted on that small interval;
//   2^n is built directly as the bits of a float: exponent field n + 127, mantissa 0.
// Below −87.3, where the true value leaves the normal floats, the result is 0; above 88.37 it
// stays at e^88.37 ≈ 2.4e38 instead of growing to infinity.

/// `e^x` for `count` floats, in place.
@inline(__always)
public func expInPlace(_ values: UnsafeMutablePointer<Float>, count: Int) {
    CPUKernels.active.exp(values, count)
}

/// `e^x` for eight lanes.
@inline(__always)
public func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    var lanes = x
    withUnsafeMutableBytes(of: &lanes) { expInPlace($0.baseAddress!.assumingMemoryBound(to: Float.self), count: 8) }
    return lanes
}
