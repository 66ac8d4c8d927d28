// GEMM: general matrix multiplication, C = A · B (+ C).
//
// Almost all of Stable Diffusion's arithmetic is here: every linear layer, every convolution
// (through im2col) and both products inside attention are matrix multiplications. So this file
// holds two versions of the same function:
//
//   gemmReference  three nested loops, obviously correct; the test oracle and the fallback.
//   gemm           the fast one: cache blocking, packing, a 6x16 SIMD register tile, all cores.
//
// Tests run both on awkward shapes (1x1, primes, sizes that are not multiples of the tile) and
// require the same answer; `sd-bench gemm` prints how much faster the fast one is.

/// A read-only matrix in memory with arbitrary strides, so that a transpose costs nothing:
/// element `(row, column)` is at `pointer[row * rowStride + column * columnStride]`.
public struct MatrixOperand {
    public var pointer: UnsafePointer<Float>
    public var rowStride: Int
    public var columnStride: Int

    public init(_ pointer: UnsafePointer<Float>, rowStride: Int, columnStride: Int) {
        self.pointer = pointer
        self.rowStride = rowStride
        self.columnStride = columnStride
    }

    /// A row-major matrix whose rows are `rowLength` apart.
    public static func rowMajor(_ pointer: UnsafePointer<Float>, rowLength: Int) -> MatrixOperand {
        MatrixOperand(pointer, rowStride: rowLength, columnStride: 1)
    }

    /// The transpose of a row-major matrix whose rows are `rowLength` apart. A linear layer's
    /// weight `(D_out, D_in)` used as the right operand `(D_in, D_out)` is exactly this.
    public static func transposed(_ pointer: UnsafePointer<Float>, rowLength: Int) -> MatrixOperand {
        MatrixOperand(pointer, rowStride: 1, columnStride: rowLength)
    }

    @inline(__always) func element(_ row: Int, _ column: Int) -> Float {
        pointer[row * rowStride + column * columnStride]
    }
}

// MARK: - Reference

/// The algorithmic reference: `C[i, j] (+)= Σ_p A[i, p] · B[p, j]`, one dot product per output.
///
/// - Parameters:
///   - m, n, k: `A` is `(m, k)`, `B` is `(k, n)`, `C` is `(m, n)`.
///   - c: output, row-major with rows `ldc` apart.
///   - accumulate: add to the existing `C` instead of overwriting it.
public func gemmReference(m: Int, n: Int, k: Int, a: MatrixOperand, b: MatrixOperand,
                          c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
    for i in 0..<m {
        for j in 0..<n {
            var sum: Float = accumulate ? c[i * ldc + j] : 0
            for p in 0..<k { sum += a.element(i, p) * b.element(p, j) }
            c[i * ldc + j] = sum
        }
    }
}

// MARK: - Fast

/// The micro-kernel computes a register tile of `mr x nr` outputs: 6 rows x 16 columns is twelve
/// 8-wide vector accumulators, which plus two B vectors and one broadcast A value fills the 16 AVX
/// registers of an x86-64 core (and 15 of NEON's 32 on arm64).
@usableFromInline let mr = 6
@usableFromInline let nr = 16

/// Cache blocking (the classic Goto/BLIS loop nest). A `kc x nr` panel of B (16 KB) stays in L1
/// while the kernel sweeps it; an `mc x kc` block of A (~150 KB) stays in L2; a `kc x nc` block of
/// B (~3 MB) stays in L3 and is reused by every block of A.
@usableFromInline let kc = 256
@usableFromInline let mc = 144
@usableFromInline let nc = 3072

/// Below this many multiply-adds the packing and threading overhead does not pay off.
@usableFromInline let smallProductLimit = 4096

/// The fast GEMM: same contract as `gemmReference`, roughly 100x faster on large matrices.
///
/// How it works, outermost loop first:
/// 1. Cut `N` into blocks of `nc` columns and `K` into slices of `kc`.
/// 2. Pack the `kc x nc` block of B into contiguous `kc x 16` column panels (zero-padded), so the
///    kernel reads it with unit stride whatever B's original strides were (free transposes).
/// 3. In parallel over blocks of `mc` rows of A (and over column ranges when A is short), pack the
///    `mc x kc` block of A into `6 x kc` row panels, then call the 6x16 micro-kernel for every pair
///    of panels. The first `kc` slice overwrites C (unless `accumulate`), later ones add to it.
public func gemm(m: Int, n: Int, k: Int, a: MatrixOperand, b: MatrixOperand,
                 c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
    Profiler.measure("gemm") {
        blockedGEMM(m: m, n: n, k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate)
    }
}

/// The body of `gemm`, outside the profiler's stopwatch.
func blockedGEMM(m: Int, n: Int, k: Int, a: MatrixOperand, b: MatrixOperand,
                 c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
        return
    }
    if m * n * k <= smallProductLimit {
        gemmReference(m: m, n: n, k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate)
        return
    }

    let packedB = UnsafeMutablePointer<Float>.allocate(capacity: kc * ((min(n, nc) + nr - 1) / nr) * nr)
    defer { packedB.deallocate() }
    let output = SendablePointer(c)
    let bBuffer = SendablePointer(packedB)

    for jc in stride(from: 0, to: n, by: nc) {
        let ncBlock = min(nc, n - jc)
        let panelsB = (ncBlock + nr - 1) / nr
        for pc in stride(from: 0, to: k, by: kc) {
            let kcBlock = min(kc, k - pc)
            let overwrite = pc == 0 && !accumulate

            // Step 2: pack B, one panel of 16 columns per piece of work.
            Parallel.forEach(panelsB) { panel in
                packPanelB(b, rows: pc..<(pc + kcBlock), columns: (jc + panel * nr)..<min(jc + ncBlock, jc + (panel + 1) * nr),
                           into: bBuffer.pointer + panel * kcBlock * nr)
            }

            // Step 3: tasks are (block of A rows) x (range of B panels). Split the columns too
            // when there are fewer row blocks than threads, so a 77-token text batch still uses
            // every core.
            let blocksA = (m + mc - 1) / mc
            let columnSplits = blocksA >= Parallel.threadCount ? 1 : min(panelsB, Parallel.threadCount * 2 / blocksA + 1)
            let panelsPerSplit = (panelsB + columnSplits - 1) / columnSplits
            Parallel.forEach(blocksA * columnSplits) { task in
                let ic = (task / columnSplits) * mc
                let mcBlock = min(mc, m - ic)
                let firstPanel = (task % columnSplits) * panelsPerSplit
                let lastPanel = min(panelsB, firstPanel + panelsPerSplit)
                if firstPanel >= lastPanel { return }

                let panelsA = (mcBlock + mr - 1) / mr
                let packedA = UnsafeMutablePointer<Float>.allocate(capacity: panelsA * mr * kcBlock)
                defer { packedA.deallocate() }
                for panel in 0..<panelsA {
                    packPanelA(a, rows: (ic + panel * mr)..<min(ic + mcBlock, ic + (panel + 1) * mr),
                               columns: pc..<(pc + kcBlock), into: packedA + panel * mr * kcBlock)
                }

                for panelB in firstPanel..<lastPanel {
                    let column = jc + panelB * nr
                    let columns = min(nr, n - column)
                    for panelA in 0..<panelsA {
                        let row = ic + panelA * mr
                        microKernel(kc: kcBlock, a: packedA + panelA * mr * kcBlock,
                                    b: bBuffer.pointer + panelB * kcBlock * nr,
                                    c: output.pointer + row * ldc + column, ldc: ldc,
                                    rows: min(mr, m - row), columns: columns, overwrite: overwrite)
                    }
                }
            }
        }
    }
}

/// Copies `B[rows, columns]` into one panel laid out as `kc` consecutive groups of 16 values
/// (`packed[p * 16 + j] = B[p, j]`), padding missing columns with zeros.
@inline(__always)
func packPanelB(_ b: MatrixOperand, rows: Range<Int>, columns: Range<Int>,
                into packed: UnsafeMutablePointer<Float>) {
    let width = columns.count
    var out = packed
    if b.columnStride == 1 && width == nr {
        // Row-major B with a full panel: straight 16-float copies.
        for p in rows {
            out.update(from: b.pointer + p * b.rowStride + columns.lowerBound, count: nr)
            out += nr
        }
        return
    }
    for p in rows {
        let row = b.pointer + p * b.rowStride
        for j in 0..<nr {
            out[j] = j < width ? row[(columns.lowerBound + j) * b.columnStride] : 0
        }
        out += nr
    }
}

/// Copies `A[rows, columns]` into one panel laid out as `kc` consecutive groups of 6 values
/// (`packed[p * 6 + i] = A[i, p]`), padding missing rows with zeros.
@inline(__always)
func packPanelA(_ a: MatrixOperand, rows: Range<Int>, columns: Range<Int>,
                into packed: UnsafeMutablePointer<Float>) {
    let height = rows.count
    for i in 0..<mr {
        if i < height {
            let row = a.pointer + (rows.lowerBound + i) * a.rowStride
            var p = 0
            for column in columns {
                packed[p * mr + i] = row[column * a.columnStride]
                p += 1
            }
        } else {
            for p in 0..<columns.count { packed[p * mr + i] = 0 }
        }
    }
}

/// The register tile: `C[0..<6, 0..<16] (+)= Apanel · Bpanel` over `kc` steps.
///
/// Each step loads 16 values of B as two 8-wide vectors, broadcasts each of 6 values of A, and
/// does 12 fused multiply-adds: 192 floating-point operations from 22 loaded numbers. Partial tiles
/// at the matrix edges are computed in full (the packed panels are zero-padded) and only the
/// valid part is stored.
@inline(__always)
func microKernel(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                 c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, columns: Int, overwrite: Bool) {
    typealias V = SIMD8<Float>
    var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
    var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
    var pa = a
    var pb = UnsafeRawPointer(b)
    for _ in 0..<kc {
        let b0 = pb.loadUnaligned(as: V.self)
        let b1 = pb.loadUnaligned(fromByteOffset: 32, as: V.self)
        var s = V(repeating: pa[0]); c00.addProduct(s, b0); c01.addProduct(s, b1)
        s = V(repeating: pa[1]); c10.addProduct(s, b0); c11.addProduct(s, b1)
        s = V(repeating: pa[2]); c20.addProduct(s, b0); c21.addProduct(s, b1)
        s = V(repeating: pa[3]); c30.addProduct(s, b0); c31.addProduct(s, b1)
        s = V(repeating: pa[4]); c40.addProduct(s, b0); c41.addProduct(s, b1)
        s = V(repeating: pa[5]); c50.addProduct(s, b0); c51.addProduct(s, b1)
        pa += mr
        pb += nr * MemoryLayout<Float>.stride
    }

    storeRow(c00, c01, to: c, ldc: ldc, row: 0, rows: rows, columns: columns, overwrite: overwrite)
    storeRow(c10, c11, to: c, ldc: ldc, row: 1, rows: rows, columns: columns, overwrite: overwrite)
    storeRow(c20, c21, to: c, ldc: ldc, row: 2, rows: rows, columns: columns, overwrite: overwrite)
    storeRow(c30, c31, to: c, ldc: ldc, row: 3, rows: rows, columns: columns, overwrite: overwrite)
    storeRow(c40, c41, to: c, ldc: ldc, row: 4, rows: rows, columns: columns, overwrite: overwrite)
    storeRow(c50, c51, to: c, ldc: ldc, row: 5, rows: rows, columns: columns, overwrite: overwrite)
}

/// Writes (or adds) one row of the register tile, `lo` holding columns 0-7 and `hi` 8-15.
/// Rows and columns beyond the matrix edge are dropped.
@inline(__always)
func storeRow(_ lo: SIMD8<Float>, _ hi: SIMD8<Float>, to c: UnsafeMutablePointer<Float>, ldc: Int,
              row: Int, rows: Int, columns: Int, overwrite: Bool) {
    guard row < rows else { return }
    let out = c + row * ldc
    if columns == nr {
        let raw = UnsafeMutableRawPointer(out)
        var lo = lo, hi = hi
        if !overwrite {
            lo += raw.loadUnaligned(as: SIMD8<Float>.self)
            hi += raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        }
        raw.storeBytes(of: lo, as: SIMD8<Float>.self)
        raw.storeBytes(of: hi, toByteOffset: 32, as: SIMD8<Float>.self)
    } else {
        for j in 0..<columns {
            let value = j < 8 ? lo[j] : hi[j - 8]
            out[j] = overwrite ? value : out[j] + value
        }
    }
}

extension SIMD8 where Scalar == Float {
    /// `self += a * b` as one fused multiply-add per lane.
    @inline(__always) mutating func addProduct(_ a: Self, _ b: Self) {
        self = self.addingProduct(a, b)
    }
}
