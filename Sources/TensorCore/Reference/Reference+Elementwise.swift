// Elementwise arithmetic: residual connections, biases, and the update of every sampler step.

extension Reference {
    /// `f` applied to matching elements of two tensors of one shape: `y[i] = f(a[i], b[i])`.
    public static func zip(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(a.shape == b.shape, "shapes differ: \(a.shape) vs \(b.shape)")
        var out = [Float](repeating: 0, count: a.count)
        for i in 0..<a.count { out[i] = f(a.scalars[i], b.scalars[i]) }
        return Tensor(shape: a.shape, scalars: out)
    }

    /// `α·a + β·b` elementwise: the shape of nearly every diffusion formula
    /// (`x_t = √ᾱ·x₀ + √(1−ᾱ)·ε`, guidance, sampler steps), and with α = β = 1 a residual add.
    public static func weightedSum(_ a: Tensor, _ alpha: Float, _ b: Tensor, _ beta: Float) -> Tensor {
        zip(a, b) { alpha * $0 + beta * $1 }
    }

    /// A value per channel added to every pixel of that channel:
    ///
    ///     out[n, c, i] = x[n, c, i] + v[c]         for v of shape (C): a bias
    ///     out[n, c, i] = x[n, c, i] + v[n, c]      for v of shape (N, C): the UNet's timestep, per sample
    ///
    /// - Parameters:
    ///   - x: `(N, C, ...)`.
    ///   - values: `(C)` or `(N, C)`.
    public static func addChannelwise(_ x: Tensor, _ values: Tensor) -> Tensor {
        let N = x.shape[0], C = x.shape[1]
        let pixels = x.count / (N * C)
        let perSample = values.count == N * C && values.rank == 2
        var out = x.scalars
        for n in 0..<N {
            for c in 0..<C {
                let v = values.scalars[perSample ? n * C + c : c]
                for i in 0..<pixels { out[(n * C + c) * pixels + i] += v }
            }
        }
        return Tensor(shape: x.shape, scalars: out)
    }
}

// MARK: - Backward

extension Reference {
    /// The gradient of `addChannelwise` with respect to the added values (the gradient with
    /// respect to `x` is `dOut` itself): each value was added to every pixel of its channel, so
    ///
    ///     dv[c]    = Σ_n Σ_i dOut[n, c, i]         for values of shape (C)
    ///     dv[n, c] = Σ_i dOut[n, c, i]             for values of shape (N, C)
    public static func addChannelwiseBackward(_ dOut: Tensor, valuesShape: [Int]) -> Tensor {
        let N = dOut.shape[0], C = dOut.shape[1]
        let pixels = dOut.count / (N * C)
        let perSample = valuesShape.count == 2
        var dv = [Float](repeating: 0, count: perSample ? N * C : C)
        for n in 0..<N {
            for c in 0..<C {
                for i in 0..<pixels { dv[perSample ? n * C + c : c] += dOut.scalars[(n * C + c) * pixels + i] }
            }
        }
        return Tensor(shape: valuesShape, scalars: dv)
    }
}
