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

/// ReLU: `max(x, 0)`. The tiny autoencoder (TAESD) uses it.
@inlinable public func relu(_ x: Float) -> Float { x > 0 ? x : 0 }

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

// MARK: - Derivatives and backward

/// `d/dx silu(x) = σ(x) · (1 + x · (1 − σ(x)))`, from `silu(x) = x · σ(x)` and `σ' = σ · (1 − σ)`.
@inlinable public func siluDerivative(_ x: Float) -> Float {
    let sigma = 1 / (1 + expf(-x))
    return sigma * (1 + x * (1 - sigma))
}

/// `d/dx gelu(x) = Φ(x) + x · φ(x)`, with `φ(x) = e^(−x²/2) / √(2π)` the normal density.
@inlinable public func geluDerivative(_ x: Float) -> Float {
    0.5 * (1 + erff(x * 0.70710678118654752)) + x * expf(-0.5 * x * x) * 0.3989422804014327
}

/// `d/dx quickGELU(x) = σ(a·x) · (1 + a·x · (1 − σ(a·x)))` with `a = 1.702`.
@inlinable public func quickGELUDerivative(_ x: Float) -> Float {
    let sigma = 1 / (1 + expf(-1.702 * x))
    return sigma * (1 + 1.702 * x * (1 - sigma))
}

extension Reference {
    /// The gradient of an elementwise function `y = f(x)`: `dx[i] = dy[i] · f'(x[i])`.
    public static func mapBackward(_ dy: Tensor, x: Tensor, derivative: (Float) -> Float) -> Tensor {
        zip(dy, x) { $0 * derivative($1) }
    }

    /// The gradient of `geglu` (`y = h · gelu(g)` for `[h, g]` halves of the last dimension):
    ///
    ///     dh = dy · gelu(g),   dg = dy · h · gelu'(g)
    public static func gegluBackward(_ dy: Tensor, x: Tensor) -> Tensor {
        let width = x.shape[x.rank - 1], F = width / 2
        var dx = [Float](repeating: 0, count: x.count)
        for t in 0..<(x.count / width) {
            for i in 0..<F {
                let h = x.scalars[t * width + i], g = x.scalars[t * width + F + i], d = dy.scalars[t * F + i]
                dx[t * width + i] = d * gelu(g)
                dx[t * width + F + i] = d * h * geluDerivative(g)
            }
        }
        return Tensor(shape: x.shape, scalars: dx)
    }
}
