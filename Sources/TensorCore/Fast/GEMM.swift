// GEMM, the fast one: general matrix multiplication C = A · B (+ C).
//
// Almost all of Stable Diffusion's arithmetic is here: every linear layer, every convolution
// (through im2col) and both products inside attention are matrix multiplications. The plain
// version, `Reference.gemm` (Reference/Reference+Matmul.swift), is three nested loops; this one
// computes the same sums with cache blocking, packing, a 6x16 SIMD register tile and all cores.
//
// It is spread over four files: this one (the loop nest and how the cores share it),
// GEMM+Packing.swift (copying operands into the order the kernel reads them),
// GEMM+MicroKernel.swift (the register tile, where the arithmetic happens, in C per instruction
// set: see InstructionSet.swift) and GEMM+HalfPrecision.swift (16-bit operands, widened while they
// are packed).
//
// Tests run both on awkward shapes (1x1, primes, sizes that are not multiples of the tile) and
// require the same answer; `sd-bench gemm` prints how much faster the fast one is.

/// B is packed in panels of 16 columns, whatever the instruction set: the register tile
/// (`CPUKernels.tileColumns`) reads one or two of them. A's panels are as wide as the tile has rows
/// (`CPUKernels.tileRows`: 2, 6 or 14).
@usableFromInline let nr = 16

/// Cache blocks (the classic Goto/BLIS loop nest, see `serialGEMM`). A `kc x 32` block of B
/// (at most 40 KB) stays in L1 while the kernel sweeps it; an `mc x kc` block of A (at most 184 KB)
/// stays in L2; a `kc x nc` block of B (~4 MB) stays in L3 and is reused by every block of A.
/// `kc` is a maximum: see `depthSlices`. `mc` is rounded down to whole panels of A.
@usableFromInline let kc = 320
@usableFromInline let nc = 3072
func rowBlock(_ kernel: CPUKernels) -> Int { 144 / kernel.tileRows * kernel.tileRows }

/// The depth `k` cut into slices of at most `kc` steps, all the same size but the last: 320 is
/// one slice, 640 two of 320, 4096 thirteen of 316. Every slice but the first adds its partial
/// sums to C, so the fewer the better, and a short last slice (64 after four of 256, say) would
/// pay a whole pass over C for little arithmetic. Packed operands use the same slices.
public func depthSlices(_ k: Int) -> [Range<Int>] {
    let count = max(1, (k + kc - 1) / kc)
    let size = (k + count - 1) / count
    return stride(from: 0, to: k, by: max(1, size)).map { $0..<min(k, $0 + size) }
}

/// Below this many multiply-adds the packing overhead does not pay off.
@usableFromInline let smallProductLimit = 4096

/// The fast GEMM: same contract as `Reference.gemm`, roughly 100x faster on large matrices.
///
/// How it works:
/// 1. Cut C into a few rectangular tiles, about four per core (`GEMMTiling`), and hand them to the
///    cores. Tiles are independent, so the cores never wait for each other until the end.
/// 2. An operand that several tiles read in full (all of B when C is cut into row bands, all of A
///    when it is cut into column bands) is packed once, on all cores, before the tiles start.
/// 3. Each tile runs the Goto/BLIS loop nest on one core (`serialGEMM`), packing blocks of the
///    operands that are its own, and calls the micro-kernel for every pair of panels.
public func gemm(m: Int, n: Int, k: Int, a: MatrixOperand, b: MatrixOperand,
                 c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false, bias: GEMMBias = .none) {
    gemm(m: m, n: n, k: k, a: .matrix(a), b: .matrix(b), c: c, ldc: ldc, accumulate: accumulate, bias: bias)
}

/// `gemm` on a given variant's register tile (the tests run every variant the CPU has).
package func gemm(m: Int, n: Int, k: Int, a: MatrixOperand, b: MatrixOperand, c: UnsafeMutablePointer<Float>,
                  ldc: Int, accumulate: Bool = false, bias: GEMMBias = .none, kernel: CPUKernels) {
    gemm(m: m, n: n, k: k, a: .matrix(a), b: .matrix(b), c: c, ldc: ldc, accumulate: accumulate, bias: bias,
         kernel: kernel)
}

/// `gemm` with its operands given as panel sources: Float32 or 16-bit matrices, or (for B) a
/// convolution's image patches.
func gemm(m: Int, n: Int, k: Int, a: PanelSource, b: PanelSource,
          c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, bias: GEMMBias = .none,
          kernel: CPUKernels = .active) {
    Profiler.measure("gemm") {
        let tiling = GEMMTiling(m: m, n: n, k: k, threads: Parallel.threadCount, kernel: kernel)
        if tiling.count == 1 || m * n * k <= smallProductLimit {
            serialGEMM(rows: 0..<m, columns: 0..<n, k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate,
                       bias: bias, kernel: kernel)
            return
        }
        if splitsDepth(m: m, n: n, k: k) && !a.isPacked && !b.isPacked {
            splitDepthGEMM(m: m, n: n, k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate, bias: bias,
                           kernel: kernel)
            return
        }
        let (left, right) = Profiler.measure("gemm: packing shared operands") { () -> (PanelSource, PanelSource) in
            (tiling.columnSplits > 1 && !a.isPacked ? .packed(PackedMatrix(a, outer: m, depth: k, width: kernel.tileRows)) : a,
             tiling.rowSplits > 1 && !b.isPacked ? .packed(PackedMatrix(b, outer: n, depth: k, width: nr)) : b)
        }
        let output = SendablePointer(c)
        Parallel.forEach(tiling.count) { tile in
            let (rows, columns) = tiling.tile(tile)
            multiplyTile(rows: rows, columns: columns, k: k, a: left, b: right,
                         c: output.pointer + rows.lowerBound * ldc + columns.lowerBound, ldc: ldc, accumulate: accumulate,
                         bias: bias.offset(row: rows.lowerBound, column: columns.lowerBound), kernel: kernel)
        }
    }
}

/// `gemm` for work that is already shared out to the cores (an image or an attention head per
/// core): the whole product on the calling core, or, with `onAllCores`, the usual `gemm`.
func gemm(m: Int, n: Int, k: Int, a: PanelSource, b: PanelSource, c: UnsafeMutablePointer<Float>, ldc: Int,
          accumulate: Bool, bias: GEMMBias = .none, onAllCores: Bool) {
    if onAllCores {
        gemm(m: m, n: n, k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate, bias: bias)
    } else {
        serialGEMM(rows: 0..<m, columns: 0..<n, k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate, bias: bias,
                   kernel: .active)
    }
}

/// One tile on one core: `serialGEMM`, on C itself or, when C's rows are a multiple of 4 KB apart,
/// on a copy. Such rows (a 64x64 feature map's are 16 KB apart, a 512x512 one's 1 MB) all fall into
/// the same few cache sets and evict each other while the kernel works down the tile; a copy with
/// a padded row length spreads them out, and costs one pass over the tile.
func multiplyTile(rows: Range<Int>, columns: Range<Int>, k: Int, a: PanelSource, b: PanelSource,
                  c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, bias: GEMMBias, kernel: CPUKernels) {
    if ldc % 1024 != 0 || k < 128 {
        serialGEMM(rows: rows, columns: columns, k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate, bias: bias,
                   kernel: kernel)
        return
    }
    let width = columns.count + nr
    let copy = UnsafeMutablePointer<Float>.allocate(capacity: rows.count * width)
    defer { copy.deallocate() }
    if accumulate {
        for r in 0..<rows.count { (copy + r * width).update(from: c + r * ldc, count: columns.count) }
    }
    serialGEMM(rows: rows, columns: columns, k: k, a: a, b: b, c: copy, ldc: width, accumulate: accumulate, bias: bias,
               kernel: kernel)
    for r in 0..<rows.count { (c + r * ldc).update(from: copy + r * width, count: columns.count) }
}

/// How `gemm` cuts C into tiles for the cores: `rowSplits x columnSplits` rectangles, with edges on
/// multiples of the register tile. The longer side is halved until there are about four tiles per
/// core (enough for the faster core to pick up slack at the end); roughly square tiles keep the
/// packing, `k · (rows + columns)` copies, small next to the `2 · rows · columns · k` flops.
public struct GEMMTiling {
    public let m, n: Int
    public let rowSplits, columnSplits: Int
    public var count: Int { rowSplits * columnSplits }

    /// Row and column units: the register tile's size.
    public let rowUnit, columnUnit: Int

    /// The tiling for the active instruction set's register tile.
    public init(m: Int, n: Int, k: Int, threads: Int) {
        self.init(m: m, n: n, k: k, threads: threads, kernel: .active)
    }

    package init(m: Int, n: Int, k: Int, threads: Int, kernel: CPUKernels) {
        self.m = m
        self.n = n
        rowUnit = kernel.tileRows
        columnUnit = kernel.tileColumns
        let rowPanels = (m + rowUnit - 1) / rowUnit, columnPanels = (n + columnUnit - 1) / columnUnit
        // Work below ~1 MFLOP is over before a second core has woken up.
        let wanted = m * n * k < 1 << 19 ? 1 : threads * 4
        var rows = 1, columns = 1
        while rows * columns < wanted {
            let canSplitRows = rows * 2 <= rowPanels, canSplitColumns = columns * 2 <= columnPanels
            if canSplitRows && (m / rows >= n / columns || !canSplitColumns) {
                rows *= 2
            } else if canSplitColumns {
                columns *= 2
            } else {
                break
            }
        }
        rowSplits = rows
        columnSplits = columns
    }

    /// Rows and columns of tile `index`; register tiles are shared out as evenly as possible.
    public func tile(_ index: Int) -> (rows: Range<Int>, columns: Range<Int>) {
        (Self.share(index / columnSplits, of: rowSplits, total: m, unit: rowUnit),
         Self.share(index % columnSplits, of: columnSplits, total: n, unit: columnUnit))
    }

    /// Piece `piece` of `0..<total` cut into `pieces` runs of whole `unit`s.
    static func share(_ piece: Int, of pieces: Int, total: Int, unit: Int) -> Range<Int> {
        let units = (total + unit - 1) / unit
        let start = units * piece / pieces * unit, end = units * (piece + 1) / pieces * unit
        return min(start, total)..<min(end, total)
    }
}

/// One tile of the product on one core: `C[rows, columns] (+)= A[rows, :] · B[:, columns]`, where
/// `c` points at the tile's first element, `C[rows.lowerBound, columns.lowerBound]`.
///
/// The Goto/BLIS loop nest. For each block of B (`nc` columns by `kc` rows) and each block of A
/// (`mc` rows by the same `kc`), both in packed form, the micro-kernel runs over every pair of
/// panels: the 16- or 32-column panel of B stays in L1 while the kernel goes down the A block in
/// L2. The first `kc` slice overwrites C (unless `accumulate`) and adds the bias (`bias` starts at
/// the tile's first element, like `c`), later ones add to it.
func serialGEMM(rows: Range<Int>, columns: Range<Int>, k: Int, a: PanelSource, b: PanelSource,
                c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, bias: GEMMBias = .none,
                kernel: CPUKernels) {
    if rows.isEmpty || columns.isEmpty { return }
    if k == 0 || rows.count * columns.count * k <= smallProductLimit,
       multiplyUnpacked(rows: rows, columns: columns, k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate, bias: bias) {
        return
    }
    serialGEMM(rows: rows, columns: columns, depth: 0..<k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate,
               bias: bias, kernel: kernel)
}

/// `serialGEMM` over part of the depth: `C[rows, columns] (+)= A[rows, depth] · B[depth, columns]`.
func serialGEMM(rows: Range<Int>, columns: Range<Int>, depth part: Range<Int>, a: PanelSource, b: PanelSource,
                c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, bias: GEMMBias = .none,
                kernel: CPUKernels) {
    if rows.isEmpty || columns.isEmpty { return }
    let mr = kernel.tileRows, tileColumns = kernel.tileColumns, mc = rowBlock(kernel)
    let slices = depthSlices(part.count).map { ($0.lowerBound + part.lowerBound)..<($0.upperBound + part.lowerBound) }
    let scratchA = a.scratch(panelWidth: mr, outer: min(rows.count, mc), depth: slices.first?.count ?? 0)
    let scratchB = b.scratch(panelWidth: nr, outer: min(columns.count, nc), depth: slices.first?.count ?? 0)
    defer { scratchA?.deallocate(); scratchB?.deallocate() }

    for jc in stride(from: columns.lowerBound, to: columns.upperBound, by: nc) {
        let blockColumns = jc..<min(columns.upperBound, jc + nc)
        for depth in slices {
            let pc = depth.lowerBound
            let panelsB = b.panels(outer: blockColumns, depth: depth, panelWidth: nr, scratch: scratchB)
            for ic in stride(from: rows.lowerBound, to: rows.upperBound, by: mc) {
                let blockRows = ic..<min(rows.upperBound, ic + mc)
                let panelsA = a.panels(outer: blockRows, depth: depth, panelWidth: mr, scratch: scratchA)
                for column in stride(from: blockColumns.lowerBound, to: blockColumns.upperBound, by: tileColumns) {
                    let panelB = (column - blockColumns.lowerBound) / nr
                    for (panelA, row) in stride(from: blockRows.lowerBound, to: blockRows.upperBound, by: mr).enumerated() {
                        kernel.tile(depth: depth.count, a: panelsA + panelA * mr * depth.count,
                                    b: panelsB + panelB * nr * depth.count, bPanelStride: nr * depth.count,
                                    c: c + (row - rows.lowerBound) * ldc + (column - columns.lowerBound), ldc: ldc,
                                    rows: min(mr, rows.upperBound - row),
                                    columns: min(tileColumns, blockColumns.upperBound - column),
                                    overwrite: pc == part.lowerBound && !accumulate,
                                    bias: pc == part.lowerBound ? bias.offset(row: row - rows.lowerBound, column: column - columns.lowerBound) : .none)
                    }
                }
            }
        }
    }
}

/// A product too small to be worth packing, done with the reference's dot products when both
/// operands are matrices (Float32 or 16-bit). Returns false, doing nothing, for other sources.
func multiplyUnpacked(rows: Range<Int>, columns: Range<Int>, k: Int, a: PanelSource, b: PanelSource,
                      c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, bias: GEMMBias) -> Bool {
    switch a {
    case .matrix(let a):
        return multiplyUnpacked(rows: rows, columns: columns, k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate, bias: bias)
    case .halves(let a):
        return multiplyUnpacked(rows: rows, columns: columns, k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate, bias: bias)
    case .patches, .packed: return false
    }
}

private func multiplyUnpacked<A: MatrixElements>(rows: Range<Int>, columns: Range<Int>, k: Int, a: A, b: PanelSource,
                                                 c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                                                 bias: GEMMBias) -> Bool {
    let a = a.offset(row: rows.lowerBound, column: 0)
    switch b {
    case .matrix(let b):
        dotProducts(m: rows.count, n: columns.count, k: k, a: a, b: b.offset(row: 0, column: columns.lowerBound),
                    c: c, ldc: ldc, accumulate: accumulate, bias: bias)
    case .halves(let b):
        dotProducts(m: rows.count, n: columns.count, k: k, a: a, b: b.offset(row: 0, column: columns.lowerBound),
                    c: c, ldc: ldc, accumulate: accumulate, bias: bias)
    case .patches, .packed:
        return false
    }
    return true
}
