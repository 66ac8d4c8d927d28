// Matrix products: the arithmetic of every linear layer, every convolution and attention.

extension Reference {
    /// Matrix product of the last two dimensions, batched over the leading ones:
    /// `out[r, j] = Σ_p a[r, p] · b[p, j]`, where `r` runs over all rows of all leading dimensions.
    ///
    /// - Parameters:
    ///   - a: `(..., M, K)`.
    ///   - b: `(K, N)`, one matrix shared by the whole batch.
    /// - Returns: `(..., M, N)`.
    public static func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        let K = b.shape[0], N = b.shape[1]
        let rows = a.count / K                       // every row of every matrix in the batch
        let xs = a.scalars, ws = b.scalars
        var out = [Float](repeating: 0, count: rows * N)
        for r in 0..<rows {
            for j in 0..<N {
                var sum: Float = 0
                for p in 0..<K { sum += xs[r * K + p] * ws[p * N + j] }
                out[r * N + j] = sum
            }
        }
        var shape = a.shape
        shape[shape.count - 1] = N
        return Tensor(shape: shape, scalars: out)
    }

    /// A fully connected layer, PyTorch's `nn.Linear`: `y[t, o] = bias[o] + Σ_i x[t, i] · W[o, i]`,
    /// that is `y = x · Wᵀ + b` for every token `t`.
    ///
    /// - Parameters:
    ///   - x: `(..., D_in)`.
    ///   - weight: `(D_out, D_in)`, as PyTorch stores it.
    ///   - bias: `(D_out)`, or nil.
    /// - Returns: `(..., D_out)`.
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        let dOut = weight.shape[0], dIn = weight.shape[1]
        let tokens = x.count / dIn
        let xs = x.scalars, ws = weight.scalars, bs = bias?.scalars
        var out = [Float](repeating: 0, count: tokens * dOut)
        for t in 0..<tokens {
            for o in 0..<dOut {
                var sum: Float = bs?[o] ?? 0
                for i in 0..<dIn { sum += xs[t * dIn + i] * ws[o * dIn + i] }
                out[t * dOut + o] = sum
            }
        }
        var shape = x.shape
        shape[shape.count - 1] = dOut
        return Tensor(shape: shape, scalars: out)
    }

    /// The GEMM contract on raw memory, as the fast `gemm` takes it: `C[i, j] (+)= bias + Σ_p A[i, p] · B[p, j]`,
    /// one dot product per output. The test oracle for `gemm` on strided and 16-bit operands.
    ///
    /// - Parameters:
    ///   - m, n, k: `A` is `(m, k)`, `B` is `(k, n)`, `C` is `(m, n)`.
    ///   - c: output, row-major with rows `ldc` apart.
    ///   - accumulate: add to the existing `C` instead of overwriting it.
    ///   - bias: added to every sum, per row or per column of C (see `GEMMBias`).
    public static func gemm(m: Int, n: Int, k: Int, a: MatrixOperand, b: MatrixOperand,
                            c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false, bias: GEMMBias = .none) {
        dotProducts(m: m, n: n, k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate, bias: bias)
    }
}

/// `Reference.gemm`'s loops, for any kind of operand. The fast GEMM also uses them for products too
/// small to pack, so a Float32 and a 16-bit operand holding the same numbers give the same sums.
@inline(__always)
func dotProducts<A: MatrixElements, B: MatrixElements>(m: Int, n: Int, k: Int, a: A, b: B,
                                                       c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                                                       bias: GEMMBias) {
    for i in 0..<m {
        for j in 0..<n {
            var sum: Float = bias.value(i, j)
            if accumulate { sum += c[i * ldc + j] }
            for p in 0..<k { sum += a.element(i, p) * b.element(p, j) }
            c[i * ldc + j] = sum
        }
    }
}

// MARK: - Backward
//
// Given dL/dy, the gradient of a loss L with respect to a layer's output, each backward returns
// the gradients with respect to the layer's inputs and weights, by the chain rule through the
// forward's formula.

extension Reference {
    /// The gradients of `matmul` (`out = a · b`):
    ///
    ///     da[r, p] = Σ_j dOut[r, j] · b[p, j]          (da = dOut · bᵀ)
    ///     db[p, j] = Σ_r a[r, p] · dOut[r, j]          (db = aᵀ · dOut, summed over the whole batch)
    public static func matmulBackward(_ dOut: Tensor, a: Tensor, b: Tensor) -> (da: Tensor, db: Tensor) {
        let K = b.shape[0], N = b.shape[1]
        let rows = a.count / K
        let dys = dOut.scalars, xs = a.scalars, ws = b.scalars
        var da = [Float](repeating: 0, count: rows * K), db = [Float](repeating: 0, count: K * N)
        for r in 0..<rows {
            for p in 0..<K {
                var sum: Float = 0
                for j in 0..<N { sum += dys[r * N + j] * ws[p * N + j] }
                da[r * K + p] = sum
            }
        }
        for p in 0..<K {
            for j in 0..<N {
                var sum: Float = 0
                for r in 0..<rows { sum += xs[r * K + p] * dys[r * N + j] }
                db[p * N + j] = sum
            }
        }
        return (Tensor(shape: a.shape, scalars: da), Tensor(shape: b.shape, scalars: db))
    }

    /// The gradients of `linear` (`y[t, o] = bias[o] + Σ_i x[t, i] · W[o, i]`):
    ///
    ///     dx[t, i] = Σ_o dy[t, o] · W[o, i]            (dx = dy · W)
    ///     dW[o, i] = Σ_t dy[t, o] · x[t, i]            (dW = dyᵀ · x, summed over all tokens)
    ///     db[o]    = Σ_t dy[t, o]
    public static func linearBackward(_ dy: Tensor, x: Tensor, weight: Tensor) -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        let dOut = weight.shape[0], dIn = weight.shape[1]
        let tokens = x.count / dIn
        let gs = dy.scalars, xs = x.scalars, ws = weight.scalars
        var dx = [Float](repeating: 0, count: tokens * dIn)
        var dw = [Float](repeating: 0, count: dOut * dIn), db = [Float](repeating: 0, count: dOut)
        for t in 0..<tokens {
            for i in 0..<dIn {
                var sum: Float = 0
                for o in 0..<dOut { sum += gs[t * dOut + o] * ws[o * dIn + i] }
                dx[t * dIn + i] = sum
            }
        }
        for o in 0..<dOut {
            for i in 0..<dIn {
                var sum: Float = 0
                for t in 0..<tokens { sum += gs[t * dOut + o] * xs[t * dIn + i] }
                dw[o * dIn + i] = sum
            }
            for t in 0..<tokens { db[o] += gs[t * dOut + o] }
        }
        return (Tensor(shape: x.shape, scalars: dx), Tensor(shape: weight.shape, scalars: dw), Tensor(shape: [dOut], scalars: db))
    }
}
