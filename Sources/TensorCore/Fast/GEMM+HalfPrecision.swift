// 16-bit operands: the GEMM widens them while it packs.
//
// Packing already copies every number of an operand into the micro-kernel's panels (see
// GEMM+Packing.swift). For a 16-bit weight, that copy is where it becomes Float32: a panel's rows
// are widened into a small buffer, which the ordinary Float32 packing then lays out. Compared with
// widening the whole weight into a Float32 tensor first and packing that, this reads 2 bytes per
// number instead of 2 + 4, writes 4 instead of 4 + 4, and needs no weight-sized temporary.
//
// The packed panels hold exactly the numbers packing the widened tensor would give (widening is
// exact), so the product is bit-for-bit the same; the tests check that.

/// `gemm` with a 16-bit left operand (a convolution's kernel): the same contract as `gemm`, and
/// exactly the result of `gemm` on the widened numbers.
public func gemm(m: Int, n: Int, k: Int, a: HalfMatrixOperand, b: MatrixOperand,
                 c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
    gemm(m: m, n: n, k: k, a: .halves(a), b: .matrix(b), c: c, ldc: ldc, accumulate: accumulate)
}

/// `gemm` with a 16-bit right operand (a linear layer's weight, transposed).
public func gemm(m: Int, n: Int, k: Int, a: MatrixOperand, b: HalfMatrixOperand,
                 c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
    gemm(m: m, n: n, k: k, a: .matrix(a), b: .halves(b), c: c, ldc: ldc, accumulate: accumulate)
}

/// Packs `X[outer, depth]` of a 16-bit matrix in panels of `width`, as `packPanels` does for
/// Float32: each panel's rows are widened into `rows` (`width × depth` numbers, row-major), and
/// that small Float32 block is packed the usual way.
func packHalfPanels(_ x: HalfMatrixOperand, outer: Range<Int>, depth: Range<Int>, width: Int,
                    into packed: UnsafeMutablePointer<Float>) {
    let rows = UnsafeMutablePointer<Float>.allocate(capacity: width * depth.count)
    defer { rows.deallocate() }
    for (panel, first) in stride(from: outer.lowerBound, to: outer.upperBound, by: width).enumerated() {
        let count = min(width, outer.upperBound - first)
        for i in 0..<count {
            let row = rows + i * depth.count
            if x.columnStride == 1 {
                // The usual case, a weight's row: its numbers are consecutive, so widen them in bulk.
                widenHalves(x.bytes + 2 * ((first + i) * x.rowStride + depth.lowerBound), format: x.format,
                            count: depth.count, into: row)
            } else {
                for (j, p) in depth.enumerated() { row[j] = x.element(first + i, p) }
            }
        }
        packPanel(.rowMajor(rows, rowLength: depth.count), outer: 0..<count, depth: 0..<depth.count,
                  width: width, into: packed + panel * width * depth.count)
    }
}
