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

    /// `Σ_t dy[t, o]` for every column `o` of a `(..., columns)` tensor: blocks of 256 rows summed in
    /// Float on all cores, the blocks' sums added up in Double in a fixed order.
    static func columnSums(_ dy: Tensor, columns: Int) -> Tensor {
        let rows = dy.count / columns, block = 256
        let blocks = (rows + block - 1) / block
        // Per block of rows, the column sums in Float (eight columns a vector), on all cores.
        var partial = [Float](repeating: 0, count: blocks * columns)
        dy.withUnsafePointer { g in partial.withUnsafeMutableBufferPointer { partial in
            let source = SendablePointer(UnsafeMutablePointer(mutating: g)), target = SendablePointer(partial.baseAddress!)
            Parallel.forEachChunk(of: blocks, minimumChunk: max(1, 16_384 / max(1, block * columns))) { range in
                for b in range {
                    let sums = target.pointer + b * columns
                    for r in (b * block)..<min(rows, (b + 1) * block) {
                        let row = source.pointer + r * columns
                        var j = 0
                        while j + 8 <= columns {
                            store(eight(row, j) + eight(sums, j), sums, j)
                            j += 8
                        }
                        while j < columns { sums[j] += row[j]; j += 1 }
                    }
                }
            }
        }}
        // The blocks added up in Double, in order.
        var totals = [Double](repeating: 0, count: columns)
        for b in 0..<blocks {
            for j in 0..<columns { totals[j] += Double(partial[b * columns + j]) }
        }
        return Tensor(shape: [columns], scalars: totals.map { Float($0) })
    }
}
