import Foundation
import TensorCore

/// A random source that reproduces `torch.Generator("cpu").manual_seed(seed)` exactly.
///
/// Stable Diffusion pipelines draw the starting latents (and, for ancestral samplers, fresh noise
/// at every step) with `torch.randn`. To get the same picture as diffusers for the same seed, we
/// draw the same numbers in the same order:
///
/// - uniform floats take 24 random bits: `u = (bits & (2²⁴ − 1)) · 2⁻²⁴`, in [0, 1);
/// - tensors of 16 or more floats are filled with uniforms first, then turned into normals 16 at a
///   time by the Box-Muller transform, pairing element `j` with element `j + 8`:
///   `r = √(−2 ln(1 − u_j))`, `θ = 2π u_{j+8}`, `x_j = r cos θ`, `x_{j+8} = r sin θ`;
///   if the count is not a multiple of 16, the last 16 elements are drawn again and recomputed;
/// - tensors of fewer than 16 floats use PyTorch's scalar path: Box-Muller in double precision
///   from two 53-bit uniforms, caching the second value of each pair.
///
/// ```swift
/// var generator = TorchGenerator(seed: 42)
/// let latents = generator.randn([1, 4, 64, 64])   // == torch.randn(1, 4, 64, 64, generator=g)
/// ```
public struct TorchGenerator: Sendable {
    private var engine: MersenneTwister
    private var cachedNormal: Double?

    public init(seed: UInt64) {
        engine = MersenneTwister(seed: seed)
    }

    /// A uniform float in [0, 1) from 24 random bits (PyTorch's `uniform_real_distribution<float>`).
    public mutating func uniformFloat() -> Float {
        Float(engine.next() & 0x00FF_FFFF) * Float(sign: .plus, exponent: -24, significand: 1)
    }

    /// A uniform double in [0, 1) from 53 of 64 random bits (first 32-bit draw is the high word).
    public mutating func uniformDouble() -> Double {
        let high = UInt64(engine.next()), low = UInt64(engine.next())
        let bits = (high << 32) | low
        return Double(bits & ((1 << 53) - 1)) * Double(sign: .plus, exponent: -53, significand: 1)
    }

    /// One standard normal value from PyTorch's scalar (double-precision) path.
    public mutating func normalDouble() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached
        }
        let u1 = uniformDouble(), u2 = uniformDouble()
        let radius = (-2 * log1p(-u2)).squareRoot()
        let theta = 2 * Double.pi * u1
        cachedNormal = radius * sin(theta)
        return radius * cos(theta)
    }

    /// A tensor of standard normal samples, equal to `torch.randn(shape, generator=g)` on CPU.
    public mutating func randn(_ shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        if count < 16 {
            return Tensor(shape: shape, scalars: (0..<count).map { _ in Float(normalDouble()) })
        }
        var values = (0..<count).map { _ in uniformFloat() }
        for start in stride(from: 0, through: count - 16, by: 16) {
            boxMuller16(&values, at: start)
        }
        if count % 16 != 0 {
            // Redraw the last 16 uniforms and transform them again, overlapping the previous block.
            for i in (count - 16)..<count { values[i] = uniformFloat() }
            boxMuller16(&values, at: count - 16)
        }
        return Tensor(shape: shape, scalars: values)
    }

    /// Box-Muller on 16 uniforms in place: pairs `(j, j + 8)` become two independent normals.
    private func boxMuller16(_ values: inout [Float], at start: Int) {
        for j in 0..<8 {
            let u1 = 1 - values[start + j]          // (0, 1], safe for the logarithm
            let u2 = values[start + j + 8]
            let radius = (-2 * logf(u1)).squareRoot()
            let theta = 2 * Float.pi * u2
            values[start + j] = radius * cosf(theta)
            values[start + j + 8] = radius * sinf(theta)
        }
    }
}
