/// SplitMix64 (Steele, Lea & Flood, 2014): a tiny random generator whose whole state is one number.
/// A stream can start from any (seed, index) without drawing what comes before it, which is how the
/// shapes dataset makes picture `i` without the `i − 1` before it; benchmarks and damage tests use
/// it for reproducible inputs.
///
/// ```swift
/// var random = SplitMix64(seed: 42)
/// random.uniform(0.15, 0.21)       // a radius
/// random.below(4)                  // one of four colours
/// ```
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [low, high), from the top 53 bits.
    public mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * Double(next() >> 11) / Double(1 << 53)
    }

    /// Uniform in 0..<count.
    public mutating func below(_ count: Int) -> Int { Int(next() % UInt64(count)) }

    /// `count` floats in [−1, 1), from the top 24 bits each.
    public mutating func floats(_ count: Int) -> [Float] {
        (0..<count).map { _ in Float(next() >> 40) / Float(1 << 23) - 1 }
    }
}
