// Matrix products on tensors, built on `gemm`.

extension Tensor {
    /// Matrix product of the last two dimensions, batched over the leading ones:
    /// `(..., M, K) · (K, N)` → `(..., M, N)`. The right operand is one matrix shared by the batch.
    public func matmul(_ other: Tensor) -> Tensor {
        precondition(rank >= 2 && other.rank == 2 && shape[rank - 1] == other.shape[0],
                     "matmul shapes do not fit: \(shape) · \(other.shape)")
        let k = other.shape[0], n = other.shape[1]
        let m = count / k
        var outShape = shape
        outShape[rank - 1] = n
        var out = Tensor.zeros(outShape)
        withUnsafePointer { a in
            other.withUnsafePointer { b in
                out.withUnsafeMutablePointer { c in
                    gemm(m: m, n: n, k: k, a: .rowMajor(a, rowLength: k), b: .rowMajor(b, rowLength: n),
                         c: c, ldc: n)
                }
            }
        }
        return out
    }

    /// A fully connected layer: `y = x · Wᵀ + b`, with PyTorch's weight layout.
    ///
    /// - Parameters:
    ///   - weight: `(D_out, D_in)`.
    ///   - bias: `(D_out)`, or nil.
    /// - Returns: `(..., D_out)` for input `(..., D_in)`.
    public func linear(weight: Tensor, bias: Tensor?) -> Tensor {
        weight.withUnsafePointer { w in
            linear(weightShape: weight.shape, weight: .matrix(.transposed(w, rowLength: shape[rank - 1])), bias: bias)
        }
    }

    /// The same layer with a 16-bit weight `(D_out, D_in)`, widened as the GEMM packs it.
    public func linear(weight: HalfTensor, bias: Tensor?) -> Tensor {
        weight.withBytes { w in
            linear(weightShape: weight.shape,
                   weight: .halves(.transposed(w, format: weight.format, rowLength: shape[rank - 1])), bias: bias)
        }
    }

    /// `x · Wᵀ + b` with `Wᵀ`, `(D_in, D_out)`, given as GEMM's right operand.
    private func linear(weightShape: [Int], weight: PanelSource, bias: Tensor?) -> Tensor {
        let dIn = shape[rank - 1], dOut = weightShape[0]
        precondition(weightShape.count == 2 && weightShape[1] == dIn,
                     "linear: input \(shape) does not fit weight \(weightShape)")
        let m = count / dIn
        var outShape = shape
        outShape[rank - 1] = dOut
        // Every element is written by the GEMM, which adds the bias as it first stores each output.
        if let bias { precondition(bias.count == dOut, "linear: bias \(bias.shape) for \(dOut) outputs") }
        var out = Tensor(shape: outShape, unsafeUninitialized: { _ in })
        withUnsafePointer { x in
            out.withUnsafeMutablePointer { y in
                // Output features are C's columns: one bias per column.
                GEMMBias.with(bias, perRow: false) { columnBias in
                    gemm(m: m, n: dOut, k: dIn, a: .matrix(.rowMajor(x, rowLength: dIn)), b: weight,
                         c: y, ldc: dOut, accumulate: false, bias: columnBias)
                }
            }
        }
        return out
    }
}
