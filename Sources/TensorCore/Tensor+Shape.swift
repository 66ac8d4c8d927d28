// Reshaping, permuting, concatenating and slicing: operations that move numbers without changing them.

extension Tensor {
    /// The same numbers seen with another shape. One dimension may be `-1` and is inferred.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var shape = newShape
        if let unknown = shape.firstIndex(of: -1) {
            let known = shape.enumerated().filter { $0.offset != unknown }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(self.shape) to \(newShape)")
            shape[unknown] = count / known
        }
        precondition(shape.reduce(1, *) == count, "cannot reshape \(self.shape) to \(newShape)")
        return Tensor(shape: shape, scalars: scalars)
    }

    /// Reorders the dimensions: `result.shape[i] == shape[order[i]]`.
    /// For example `(N, C, H, W).permuted([0, 2, 3, 1])` gives `(N, H, W, C)`.
    public func permuted(_ order: [Int]) -> Tensor {
        Profiler.measure("permute and copies") {
            // The transformers' (N, C, H·W) ↔ (N, H·W, C) and a matrix's transpose are a batch of
            // matrix transposes, done block by block on all cores.
            switch (rank, order) {
            case (3, [0, 2, 1]): return transposingMatrices(batch: shape[0], rows: shape[1], columns: shape[2],
                                                          shape: [shape[0], shape[2], shape[1]])
            case (2, [1, 0]): return transposingMatrices(batch: 1, rows: shape[0], columns: shape[1], shape: [shape[1], shape[0]])
            default: return permutedCopy(order)
            }
        }
    }

    /// `batch` row-major `(rows, columns)` matrices, each transposed, as a tensor of `shape`:
    /// `out[n, j, i] = x[n, i, j]`, in blocks of 16x16 so that both sides stay in the cache.
    func transposingMatrices(batch: Int, rows: Int, columns: Int, shape newShape: [Int]) -> Tensor {
        let block = 16, rowBlocks = (rows + block - 1) / block
        return withUnsafePointer { x in
            Tensor(shape: newShape, unsafeUninitialized: { out in
                let (source, target) = (SendablePointer(UnsafeMutablePointer(mutating: x)), SendablePointer(out.baseAddress!))
                Parallel.forEachChunk(of: batch * rowBlocks, minimumChunk: max(1, 4096 / max(1, block * columns))) { pieces in
                    for piece in pieces {
                        let (n, rowBlock) = piece.quotientAndRemainder(dividingBy: rowBlocks)
                        let from = source.pointer + n * rows * columns, to = target.pointer + n * rows * columns
                        let rowRange = (rowBlock * block)..<min(rows, (rowBlock + 1) * block)
                        for firstColumn in stride(from: 0, to: columns, by: block) {
                            for j in firstColumn..<min(columns, firstColumn + block) {
                                for i in rowRange { to[j * rows + i] = from[i * columns + j] }
                            }
                        }
                    }
                }
            })
        }
    }

    /// Any permutation, walking the output in order (the plain version the others are tested against).
    package func permutedCopy(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "\(order) is not a permutation of \(rank) axes")
        let newShape = order.map { shape[$0] }
        let sourceStrides = strides
        let stepStrides = order.map { sourceStrides[$0] }   // source distance per step of each new axis
        var result = [Float](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: rank)
        var source = 0
        // Walk the output in order, keeping the matching source offset up to date like an odometer.
        for flat in 0..<count {
            result[flat] = scalars[source]
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                source += stepStrides[axis]
                if index[axis] < newShape[axis] { break }
                source -= stepStrides[axis] * newShape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
        return Tensor(shape: newShape, scalars: result)
    }

    /// The transpose of a matrix `(R, C)` → `(C, R)`.
    public var transposed: Tensor {
        precondition(rank == 2, "transposed needs a matrix, got shape \(shape)")
        return permuted([1, 0])
    }

    /// Joins tensors along `axis`; all other dimensions must agree. The UNet's skip connections
    /// concatenate along channels: `(N, C1, H, W)` + `(N, C2, H, W)` → `(N, C1 + C2, H, W)`.
    public static func concatenate(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "nothing to concatenate")
        let first = parts[0].shape
        for part in parts {
            precondition(part.rank == first.count, "ranks differ in concatenate")
            for d in 0..<first.count where d != axis {
                precondition(part.shape[d] == first[d], "shapes \(first) and \(part.shape) differ outside axis \(axis)")
            }
        }
        let outer = first[..<axis].reduce(1, *)
        let inner = first[(axis + 1)...].reduce(1, *)
        var shape = first
        shape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
        var result = [Float]()
        result.reserveCapacity(shape.reduce(1, *))
        for o in 0..<outer {
            for part in parts {
                let block = part.shape[axis] * inner
                result.append(contentsOf: part.scalars[(o * block)..<((o + 1) * block)])
            }
        }
        return Tensor(shape: shape, scalars: result)
    }

    /// Concatenation along channels of two `(N, C, H, W)` maps.
    public static func concatenateChannels(_ a: Tensor, _ b: Tensor) -> Tensor {
        concatenate([a, b], axis: 1)
    }

    /// `(N, C, ...)` split into channels `0..<first` and the rest: the gradient of
    /// `concatenateChannels`, whose output's first channels came from its first input.
    public func splitChannels(at first: Int) -> (Tensor, Tensor) {
        precondition(rank >= 2 && first >= 0 && first <= shape[1], "cannot split \(shape) after channel \(first)")
        let (batch, channels) = (shape[0], shape[1])
        let plane = count / max(1, batch * channels)
        var a = [Float](), b = [Float]()
        for n in 0..<batch {
            let start = n * channels * plane
            a += scalars[start..<(start + first * plane)]
            b += scalars[(start + first * plane)..<(start + channels * plane)]
        }
        var shapeA = shape, shapeB = shape
        shapeA[1] = first
        shapeB[1] = channels - first
        return (Tensor(shape: shapeA, scalars: a), Tensor(shape: shapeB, scalars: b))
    }

    /// Elements `range` of the first dimension, e.g. one image of a batch: `(N, ...)` → `(k, ...)`.
    public func slice(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0],
                     "slice \(range) out of bounds for shape \(shape)")
        let inner = count / max(shape[0], 1)
        var newShape = shape
        newShape[0] = range.count
        return Tensor(shape: newShape,
                      scalars: Array(scalars[(range.lowerBound * inner)..<(range.upperBound * inner)]))
    }

    /// Splits the first dimension into `parts` equal pieces (e.g. the conditional and
    /// unconditional halves of a classifier-free guidance batch).
    public func chunked(_ parts: Int) -> [Tensor] {
        precondition(rank >= 1 && shape[0] % parts == 0, "cannot split \(shape) into \(parts) parts")
        let size = shape[0] / parts
        return (0..<parts).map { slice(($0 * size)..<(($0 + 1) * size)) }
    }

    /// Splits `axis` into equal pieces: used to split GEGLU's `(T, 2D)` projection into two `(T, D)`.
    public func split(_ parts: Int, axis: Int) -> [Tensor] {
        precondition(shape[axis] % parts == 0, "cannot split axis \(axis) of \(shape) into \(parts)")
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        let piece = shape[axis] / parts
        var newShape = shape
        newShape[axis] = piece
        return (0..<parts).map { p in
            var out = [Float]()
            out.reserveCapacity(count / parts)
            for o in 0..<outer {
                let start = (o * shape[axis] + p * piece) * inner
                out.append(contentsOf: scalars[start..<(start + piece * inner)])
            }
            return Tensor(shape: newShape, scalars: out)
        }
    }
}
