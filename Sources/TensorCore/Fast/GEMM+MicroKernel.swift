// The innermost piece of `gemm`: a 6x16 block of C kept in twelve vector registers while a packed
// panel of A and a packed panel of B stream past. Everything else in GEMM exists to feed this loop.

import _CMemory

/// The register tile: `C[0..<6, 0..<16] (+)= Apanel · Bpanel` over `kc` steps.
///
/// Each step loads 16 values of B as two 8-wide vectors, broadcasts each of 6 values of A, and
/// does 12 fused multiply-adds: 192 floating-point operations from 22 loaded numbers. Partial tiles
/// at the matrix edges are computed in full (the packed panels are zero-padded) and only the
/// valid part is stored. `bias` (starting at this tile's first element) is added as it is stored.
@inline(__always)
func microKernel(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                 c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, columns: Int, overwrite: Bool,
                 bias: GEMMBias = .none) {
    typealias V = SIMD8<Float>
    // Ask for the six rows of C now: the loop below takes hundreds to thousands of cycles, enough for
    // them to arrive from main memory, and the stores at the end then find them in L1 instead of
    // stalling. Linear layers, whose outputs are new and large, gain the most.
    for row in 0..<rows {
        memory_prefetch_for_writing(c + row * ldc)
        memory_prefetch_for_writing(c + row * ldc + nr - 1)
    }
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

    storeRow(c00, c01, to: c, ldc: ldc, row: 0, rows: rows, columns: columns, overwrite: overwrite, bias: bias)
    storeRow(c10, c11, to: c, ldc: ldc, row: 1, rows: rows, columns: columns, overwrite: overwrite, bias: bias)
    storeRow(c20, c21, to: c, ldc: ldc, row: 2, rows: rows, columns: columns, overwrite: overwrite, bias: bias)
    storeRow(c30, c31, to: c, ldc: ldc, row: 3, rows: rows, columns: columns, overwrite: overwrite, bias: bias)
    storeRow(c40, c41, to: c, ldc: ldc, row: 4, rows: rows, columns: columns, overwrite: overwrite, bias: bias)
    storeRow(c50, c51, to: c, ldc: ldc, row: 5, rows: rows, columns: columns, overwrite: overwrite, bias: bias)
}

/// Writes (or adds) one row of the register tile, `lo` holding columns 0-7 and `hi` 8-15, plus
/// the row's bias. Rows and columns beyond the matrix edge are dropped.
@inline(__always)
func storeRow(_ lo: SIMD8<Float>, _ hi: SIMD8<Float>, to c: UnsafeMutablePointer<Float>, ldc: Int,
              row: Int, rows: Int, columns: Int, overwrite: Bool, bias: GEMMBias) {
    guard row < rows else { return }
    let out = c + row * ldc
    if columns == nr {
        let raw = UnsafeMutableRawPointer(out)
        var lo = lo, hi = hi
        switch bias {
        case .none:
            break
        case .perRow(let rowBias):
            lo += SIMD8(repeating: rowBias[row])
            hi += SIMD8(repeating: rowBias[row])
        case .perColumn(let columnBias):
            lo += UnsafeRawPointer(columnBias).loadUnaligned(as: SIMD8<Float>.self)
            hi += UnsafeRawPointer(columnBias).loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        }
        if !overwrite {
            lo += raw.loadUnaligned(as: SIMD8<Float>.self)
            hi += raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        }
        raw.storeBytes(of: lo, as: SIMD8<Float>.self)
        raw.storeBytes(of: hi, toByteOffset: 32, as: SIMD8<Float>.self)
    } else {
        for j in 0..<columns {
            let value = (j < 8 ? lo[j] : hi[j - 8]) + bias.value(row, j)
            out[j] = overwrite ? value : value + out[j]
        }
    }
}

extension SIMD8 where Scalar == Float {
    /// `self += a * b` as one fused multiply-add per lane.
    @inline(__always) mutating func addProduct(_ a: Self, _ b: Self) {
        self = self.addingProduct(a, b)
    }
}
