// Matrix products on tensors, built on the fast `gemm`: the twins of Reference+Matmul.swift.

extension Fast {
    /// `Reference.matmul` on the GEMM: `(..., M, K) · (K, N)` → `(..., M, N)`.
    public static func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        let k = b.shape[0], n = b.shape[1]
        let m = a.count / k
        var outShape = a.shape
        outShape[a.rank - 1] = n
        // Every element is written by the GEMM (it overwrites C).
        return Tensor(shape: outShape, unsafeUninitialized: { c in
            a.withUnsafePointer { x in
                b.withUnsafePointer { w in
                    gemm(m: m, n: n, k: k, a: .rowMajor(x, rowLength: k), b: .rowMajor(w, rowLength: n),
                         c: c.baseAddress!, ldc: n)
                }
            }
        })
    }

    /// `Reference.linear` on the GEMM: `y = x · Wᵀ + b`, with the weight `(D_out, D_in)` read
    /// through transposed strides (no copy) and the bias added where each output is first stored.
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        weight.withUnsafePointer { w in
            linear(x, weightShape: weight.shape, weight: .matrix(.transposed(w, rowLength: x.shape[x.rank - 1])), bias: bias)
        }
    }

    /// The same layer with a 16-bit weight `(D_out, D_in)`, widened as the GEMM packs it.
    public static func linear(_ x: Tensor, weight: HalfTensor, bias: Tensor?) -> Tensor {
        weight.withBytes { w in
            linear(x, weightShape: weight.shape,
                   weight: .halves(.transposed(w, format: weight.format, rowLength: x.shape[x.rank - 1])), bias: bias)
        }
    }

    /// `x · Wᵀ + b` with `Wᵀ`, `(D_in, D_out)`, given as GEMM's right operand.
    private static func linear(_ x: Tensor, weightShape: [Int], weight: PanelSource, bias: Tensor?) -> Tensor {
        let dIn = x.shape[x.rank - 1], dOut = weightShape[0]
        let m = x.count / dIn
        var outShape = x.shape
        outShape[x.rank - 1] = dOut
        // Every element is written by the GEMM, which adds the bias as it first stores each output.
        return Tensor(shape: outShape, unsafeUninitialized: { y in
            x.withUnsafePointer { x in
                // Output features are C's columns: one bias per column.
                GEMMBias.with(bias, perRow: false) { columnBias in
                    gemm(m: m, n: dOut, k: dIn, a: .matrix(.rowMajor(x, rowLength: dIn)), b: weight,
                         c: y.baseAddress!, ldc: dOut, accumulate: false, bias: columnBias)
                }
            }
        })
    }
}

// MARK: - Backward

extension Fast {
    /// `Reference.linearBackward` on the GEMM: `dx = dy · W` and `dW = dyᵀ · x` are two matrix
    /// products (the transpose read through strides, never copied); `db` sums dy's columns.
    public static func linearBackward(_ dy: Tensor, x: Tensor, weight: Tensor) -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        let dOut = weight.shape[0], dIn = weight.shape[1]
        let tokens = x.count / dIn
        let dx = Tensor(shape: x.shape, unsafeUninitialized: { out in
            dy.withUnsafePointer { g in
                weight.withUnsafePointer { w in
                    // (tokens, D_out) · (D_out, D_in)
                    gemm(m: tokens, n: dIn, k: dOut, a: .rowMajor(g, rowLength: dOut), b: .rowMajor(w, rowLength: dIn),
                         c: out.baseAddress!, ldc: dIn)
                }
            }
        })
        let dWeight = Tensor(shape: weight.shape, unsafeUninitialized: { out in
            dy.withUnsafePointer { g in
                x.withUnsafePointer { x in
                    // (D_out, tokens) · (tokens, D_in): dy read as its transpose.
                    gemm(m: dOut, n: dIn, k: tokens, a: .transposed(g, rowLength: dOut), b: .rowMajor(x, rowLength: dIn),
                         c: out.baseAddress!, ldc: dIn)
                }
            }
        })
        return (dx, dWeight, columnSums(dy, columns: dOut))
    }

    /// `Σ_t dy[t, o]` for every column `o` of a `(..., columns)` tensor, in Double, columns shared
    /// out to the cores.
    static func columnSums(_ dy: Tensor, columns: Int) -> Tensor {
        let rows = dy.count / columns
        return Tensor(shape: [columns], unsafeUninitialized: { out in
            let target = SendablePointer(out.baseAddress!)
            dy.withUnsafePointer { g in
                let source = SendablePointer(UnsafeMutablePointer(mutating: g))
                Parallel.forEachChunk(of: columns, minimumChunk: 64) { range in
                    var sums = [Double](repeating: 0, count: range.count)
                    for r in 0..<rows {
                        let row = source.pointer + r * columns
                        for (i, o) in range.enumerated() { sums[i] += Double(row[o]) }
                    }
                    for (i, o) in range.enumerated() { target.pointer[o] = Float(sums[i]) }
                }
            }
        })
    }
}
