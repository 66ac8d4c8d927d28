import Foundation

// The activation functions of CLIP, the UNet and the VAE: first the definitions, one number at a
// time, then the same applied to every element of a tensor.

/// SiLU (swish): `x · σ(x) = x / (1 + e^−x)`. The UNet and the VAE use it after every GroupNorm.
@inlinable public func silu(_ x: Float) -> Float { x / (1 + expf(-x)) }

/// GELU, exact form: `x · Φ(x) = x/2 · (1 + erf(x / √2))`. Used by the UNet's feed-forward (GEGLU).
@inlinable public func gelu(_ x: Float) -> Float { 0.5 * x * (1 + erff(x * 0.70710678118654752)) }

/// GELU, tanh approximation: `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`.
@inlinable public func geluTanh(_ x: Float) -> Float {
    0.5 * x * (1 + tanhf(0.7978845608028654 * (x + 0.044715 * x * x * x)))
}

/// Quick GELU: `x · σ(1.702 x)`. OpenAI's CLIP text encoder was trained with it.
@inlinable public func quickGELU(_ x: Float) -> Float { x / (1 + expf(-1.702 * x)) }

extension Reference {
    /// `f` applied to every element: `y[i] = f(x[i])`, any shape.
    public static func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count { out[i] = f(x.scalars[i]) }
        return Tensor(shape: x.shape, scalars: out)
    }

    /// GEGLU's activation (Shazeer, 2020): the last dimension, `2F` wide, is two halves, a value
    /// and a gate, and the gate decides how much of each value passes:
    ///
    ///     y[t, i] = x[t, i] · gelu(x[t, F + i])      for i < F
    ///
    /// - Parameter x: `(..., 2F)`.
    /// - Returns: `(..., F)`.
    public static func geglu(_ x: Tensor) -> Tensor {
        let width = x.shape[x.rank - 1], F = width / 2
        precondition(width % 2 == 0, "GEGLU needs an even feature count, got \(width)")
        let tokens = x.count / width
        var out = [Float](repeating: 0, count: tokens * F)
        for t in 0..<tokens {
            for i in 0..<F { out[t * F + i] = x.scalars[t * width + i] * gelu(x.scalars[t * width + F + i]) }
        }
        var shape = x.shape
        shape[shape.count - 1] = F
        return Tensor(shape: shape, scalars: out)
    }
}
