import Testing
import TensorCore

/// Deterministic pseudo-random numbers in [-1, 1) so failures are reproducible.
func randomScalars(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
    }
}

/// Runs the fast GEMM and the reference on the same operands and returns the largest difference,
/// relative to √K (the typical size of a K-term sum of products of numbers in [-1, 1]).
func gemmDiscrepancy(m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false,
                     accumulate: Bool = false, bias: BiasKind = .none, ldc: Int? = nil,
                     kernel: CPUKernels = .active) -> Float {
    let ldc = ldc ?? n
    let a = randomScalars(m * k, seed: UInt64(m * 31 + k))
    let b = randomScalars(k * n, seed: UInt64(n * 17 + k))
    let biasValues = randomScalars(max(m, n), seed: 7)
    let start = randomScalars(m * ldc, seed: 99)
    var fast = start, slow = start
    biasValues.withUnsafeBufferPointer { pbias in
    let bias: GEMMBias = switch bias {
    case .none: .none
    case .perRow: .perRow(pbias.baseAddress!)
    case .perColumn: .perColumn(pbias.baseAddress!)
    }
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            // A stored as (m, k) or, transposed, as (k, m); B as (k, n) or (n, k).
            let opA = transposeA ? MatrixOperand.transposed(pa.baseAddress!, rowLength: m)
                                 : .rowMajor(pa.baseAddress!, rowLength: k)
            let opB = transposeB ? MatrixOperand.transposed(pb.baseAddress!, rowLength: k)
                                 : .rowMajor(pb.baseAddress!, rowLength: n)
            fast.withUnsafeMutableBufferPointer { c in
                gemm(m: m, n: n, k: k, a: opA, b: opB, c: c.baseAddress!, ldc: ldc, accumulate: accumulate, bias: bias,
                     kernel: kernel)
            }
            slow.withUnsafeMutableBufferPointer { c in
                Reference.gemm(m: m, n: n, k: k, a: opA, b: opB, c: c.baseAddress!, ldc: ldc, accumulate: accumulate, bias: bias)
            }
        }
    }
    }
    var worst: Float = 0
    for i in 0..<(m * ldc) { worst = max(worst, abs(fast[i] - slow[i])) }
    return worst / Float(max(1, k)).squareRoot()
}

/// Which bias `gemmDiscrepancy` adds: none, one per row of C, or one per column.
enum BiasKind: CaseIterable { case none, perRow, perColumn }

// Float32 sums of K terms in a different order differ by about K · 2^-24 · |terms| in the worst
// case and √K · 2^-24 typically; 1e-5 relative to √K leaves a wide margin yet catches any wrong
// element (which would be off by O(1)).
let gemmTolerance: Float = 1e-5

@Suite("GEMM: the fast kernel agrees with the reference")
struct GEMMTests {
    @Test("awkward shapes: 1x1, primes, sizes that are not multiples of the register tile",
          arguments: [(1, 1, 1), (1, 1, 97), (2, 3, 5), (7, 13, 11), (6, 16, 256), (5, 17, 257),
                      (97, 53, 300), (13, 1, 600), (1, 301, 29), (150, 40, 513), (289, 3100, 19)])
    func awkwardShapes(shape: (Int, Int, Int)) {
        #expect(gemmDiscrepancy(m: shape.0, n: shape.1, k: shape.2) < gemmTolerance)
    }

    @Test("tiles for the cores: row bands share B, column bands share A, both share both",
          arguments: [(900, 40, 300), (40, 2000, 300), (700, 900, 200)])
    func sharedPackedOperands(shape: (Int, Int, Int)) {
        let tiling = GEMMTiling(m: shape.0, n: shape.1, k: shape.2, threads: 2)
        #expect(tiling.count == 8)
        // Each shape exercises one way of sharing: B packed once (row bands), A packed once
        // (column bands), or both.
        switch shape.0 {
        case 900: #expect(tiling.rowSplits == 8 && tiling.columnSplits == 1)
        case 40: #expect(tiling.rowSplits == 1 && tiling.columnSplits == 8)
        default: #expect(tiling.rowSplits > 1 && tiling.columnSplits > 1)
        }
        #expect(gemmDiscrepancy(m: shape.0, n: shape.1, k: shape.2) < gemmTolerance)
        #expect(gemmDiscrepancy(m: shape.0, n: shape.1, k: shape.2, transposeA: true, transposeB: true,
                                accumulate: true) < gemmTolerance)
    }

    @Test("the tiles cover every element of C exactly once, on register-tile boundaries",
          arguments: [(1, 1, 1), (7, 3000, 64), (1000, 17, 64), (333, 444, 555), (4096, 4096, 40)])
    func tilesPartitionC(shape: (Int, Int, Int)) {
        for threads in [1, 2, 3, 8] {
            let tiling = GEMMTiling(m: shape.0, n: shape.1, k: shape.2, threads: threads)
            var covered = [Int](repeating: 0, count: shape.0 * shape.1)
            for index in 0..<tiling.count {
                let (rows, columns) = tiling.tile(index)
                #expect(rows.lowerBound % tiling.rowUnit == 0 && columns.lowerBound % tiling.columnUnit == 0)
                for i in rows { for j in columns { covered[i * shape.1 + j] += 1 } }
            }
            #expect(covered.allSatisfy { $0 == 1 })
        }
    }

    @Test("depth slices: cover 0..<k in order, at most kc deep, all equal but a shorter last one",
          arguments: [1, 40, 256, 320, 321, 640, 1280, 2880, 4096])
    func slices(k: Int) {
        let slices = depthSlices(k)
        #expect(slices.first?.lowerBound == 0 && slices.last?.upperBound == k)
        #expect(zip(slices, slices.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        #expect(slices.allSatisfy { $0.count <= 320 })
        #expect(slices.dropLast().allSatisfy { $0.count == slices[0].count })
        #expect(slices.count == (k + 319) / 320)   // as few as the 320-step limit allows
    }

    @Test("a small C over a long depth: each core sums a part of the depth, the parts then added",
          arguments: [(64, 64, 2048), (37, 45, 1500), (130, 300, 1027)])
    func splitDepth(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        // On one core there is nothing to share out; everywhere else these shapes take that road.
        #expect(splitsDepth(m: m, n: n, k: k) == (Parallel.threadCount > 1))
        #expect(gemmDiscrepancy(m: m, n: n, k: k) < gemmTolerance)
        #expect(gemmDiscrepancy(m: m, n: n, k: k, transposeA: true, transposeB: true) < gemmTolerance)
        for kind in BiasKind.allCases {
            #expect(gemmDiscrepancy(m: m, n: n, k: k, accumulate: true, bias: kind, ldc: n + 5) < gemmTolerance, "\(kind)")
        }
    }

    @Test("transposed operands read through strides")
    func transposedOperands() {
        #expect(gemmDiscrepancy(m: 37, n: 45, k: 71, transposeA: true) < gemmTolerance)
        #expect(gemmDiscrepancy(m: 37, n: 45, k: 71, transposeB: true) < gemmTolerance)
        #expect(gemmDiscrepancy(m: 64, n: 77, k: 300, transposeA: true, transposeB: true) < gemmTolerance)
    }

    @Test("accumulate adds to C instead of overwriting it")
    func accumulate() {
        #expect(gemmDiscrepancy(m: 50, n: 70, k: 600, accumulate: true) < gemmTolerance)
        #expect(gemmDiscrepancy(m: 3, n: 4, k: 5, accumulate: true) < gemmTolerance)
    }

    @Test("a bias per row or per column is added where the product is first stored",
          arguments: [(7, 13, 11), (97, 53, 300), (900, 40, 300), (40, 2000, 700), (5, 17, 0)])
    func bias(shape: (Int, Int, Int)) {
        for kind in BiasKind.allCases {
            for accumulate in [false, true] {
                #expect(gemmDiscrepancy(m: shape.0, n: shape.1, k: shape.2, accumulate: accumulate, bias: kind) < gemmTolerance,
                        "\(kind), accumulate: \(accumulate)")
            }
        }
        // C's rows 2048 numbers apart and k ≥ 128: each tile is computed in a padded copy of C.
        #expect(gemmDiscrepancy(m: 130, n: 300, k: 200, bias: .perRow, ldc: 2048) < gemmTolerance)
        #expect(gemmDiscrepancy(m: 130, n: 300, k: 200, accumulate: true, bias: .perColumn, ldc: 2048) < gemmTolerance)
    }

    @Test("a 2x2 product computed by hand")
    func handComputed() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        let a = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        let b = Tensor(shape: [2, 2], scalars: [5, 6, 7, 8])
        #expect(a.matmul(b).scalars == [19, 22, 43, 50])
    }

    @Test("linear layer: y = x Wᵀ + b with PyTorch's (out, in) weight")
    func linear() {
        let x = Tensor(shape: [1, 2, 3], scalars: [1, 0, -1, 2, 1, 0])
        let w = Tensor(shape: [2, 3], scalars: [1, 2, 3, 0, 1, 0])
        let b = Tensor(shape: [2], scalars: [0.5, -1])
        // token 0: [1-3+0.5, 0-1] = [-1.5, -1]; token 1: [2+2+0.5, 1-1] = [4.5, 0]
        let y = x.linear(weight: w, bias: b)
        #expect(y.shape == [1, 2, 2])
        #expect(y.scalars == [-1.5, -1, 4.5, 0])
    }
}
