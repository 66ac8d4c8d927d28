// 16-bit floating-point formats in which checkpoints store weights.
//
//   IEEE half (float16): 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
//   bfloat16:            1 sign bit, 8 exponent bits (bias 127), 7 mantissa bits: the top half of
//                        a float32, so widening it is a 16-bit shift.
//
// Both are widened to Float32 for computing. The bit-level decoders below are the definition
// (and work on every platform); `widenFloat16` is the bulk path.

/// Decodes IEEE-754 binary16 bits into a Float, following the format's definition:
/// normal numbers `(−1)^s · 2^(e−15) · 1.m`, subnormals `(−1)^s · 2^−14 · 0.m`, infinities and NaN.
public func float16BitsToFloat(_ bits: UInt16) -> Float {
    let sign: UInt32 = UInt32(bits & 0x8000) << 16
    let exponent = UInt32(bits >> 10) & 0x1F
    let mantissa = UInt32(bits & 0x03FF)
    switch exponent {
    case 0:
        // Zero or subnormal: value = mantissa · 2^−24.
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -magnitude : magnitude
    case 0x1F:
        // Infinity (mantissa 0) or NaN: all-ones exponent in float32 too, mantissa kept.
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    default:
        // Re-bias the exponent from 15 to 127 and move the mantissa to the top of 23 bits.
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }
}

/// Decodes bfloat16 bits: they are the upper 16 bits of a float32.
@inline(__always)
public func bfloat16BitsToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Rounds a Float to bfloat16 bits, round-to-nearest-even (NaN kept as NaN).
public func floatToBFloat16Bits(_ value: Float) -> UInt16 {
    if value.isNaN { return 0x7FC0 }
    let bits = value.bitPattern
    let roundingBias: UInt32 = 0x7FFF + ((bits >> 16) & 1)
    return UInt16((bits &+ roundingBias) >> 16)
}

/// Widens `count` float16 values at `source` (any alignment) to Float32, exactly: the hardware
/// conversion where the CPU has one (F16C on x86-64, arm64), the bits moved into place elsewhere
/// (`widen_half` in Sources/_CKernels/kernel_template.h).
public func widenFloat16(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
    CPUKernels.active.widenHalf(source, destination, count)
}

/// Widens `count` bfloat16 values at `source` (any alignment) to Float32.
public func widenBFloat16(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
    for i in 0..<count { destination[i] = bfloat16BitsToFloat(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
}
