import Foundation

// e^x for eight floats at once, for softmax and the sigmoid inside SiLU.
//
// libm's `expf` handles one number per call; attention at 512x512 needs a few hundred million
// exponentials per denoising step. This version works on a whole vector register at once, within
// 1 ulp of `expf` (tested against it over the whole range).
//
// The method (Cody & Waite range reduction, as in the Cephes library):
//   e^x = 2^n · e^r   with n = round(x / ln 2) and r = x − n·ln 2, so |r| ≤ ln 2 / 2;
//   e^r ≈ 1 + r + r²·P(r), P a degree-5 polynomial fitted on that small interval;
//   2^n is built directly as the bits of a float: exponent field n + 127, mantissa 0.

/// `e^x` elementwise. Below −87.3, where the true value leaves the normal floats, the result is 0;
/// above 88.37 it stays at e^88.37 ≈ 2.4e38 instead of growing to infinity.
///
/// `@_transparent` makes the compiler paste the body into every caller, which `@inline(__always)`
/// did not always do: called as a function, the softmax loop would pay a call and a register
/// reset per eight numbers.
@_transparent
public func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    typealias V = SIMD8<Float>
    let high = V(repeating: 88.3762626647949), low = V(repeating: -87.3365447504)
    let clamped = x.replacing(with: high, where: x .> high).replacing(with: low, where: x .< low)

    // Adding 1.5·2²³ rounds to the nearest integer, and leaves that integer in the low mantissa
    // bits of `shifted`, ready to become an exponent field.
    let magic: Float = 12_582_912
    let shifted = clamped * 1.44269504088896341 + magic
    let n = shifted - magic
    // r = x − n·ln 2, with ln 2 split in a short head (exact in n·head) and a tail.
    let r = clamped - n * 0.693359375 + n * 2.12194440e-4

    // Horner's rule, one fused multiply-add per coefficient: p ← c + p·r.
    var p = V(repeating: 1.9875691500e-4)
    p = V(repeating: 1.3981999507e-3).addingProduct(p, r)
    p = V(repeating: 8.3334519073e-3).addingProduct(p, r)
    p = V(repeating: 4.1665795894e-2).addingProduct(p, r)
    p = V(repeating: 1.6666665459e-1).addingProduct(p, r)
    p = V(repeating: 5.0000001201e-1).addingProduct(p, r)
    let expR = (r + 1).addingProduct(p, r * r)

    // The bits of `shifted` are 0x4B400000 + n; make them (n + 127) << 23, the float 2^n.
    let twoToN = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &+ (127 - 0x4B40_0000)) &<< 23
    let result = expR * unsafeBitCast(twoToN, to: V.self)
    return result.replacing(with: 0, where: x .< low)
}
