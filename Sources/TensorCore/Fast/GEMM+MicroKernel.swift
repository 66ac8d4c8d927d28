// The innermost piece of `gemm`: a block of C kept in vector registers while a packed panel of A
// and a packed panel of B stream past. Everything else in GEMM exists to feed this loop.
//
// The loop itself is C (`gemm_tile_body` in Sources/_CKernels/kernel_template.h), compiled once per
// instruction set, because Swift cannot compile one function for AVX-512 and another for plain
// x86-64 in the same module. Per step of the depth it loads one row of B's panel, broadcasts each
// of A's numbers in turn and does one multiply-add per accumulator:
//
//     variant    vector   register tile   accumulators          flops per step
//     avx2       8        6 x 16          12 of 16 registers    192
//     avx512     16       14 x 32         28 of 32 registers    896
//     baseline   4        2 x 16 (x86)    8 of 16 registers     64
//
// `Reference.gemm` (Reference/Reference+Matmul.swift) computes the same sums with three loops.

extension CPUKernels {
    /// One register tile: `C[0..<rows, 0..<columns] (+)= Apanel · Bpanel` over `depth` steps.
    ///
    /// `a` holds `tileRows` numbers per step; `b` the first 16-column panel of B, and for a tile
    /// wider than 16 columns the next panel follows `bPanelStride` numbers later. Partial tiles at the
    /// matrix edges are computed in full (the packed panels are zero-padded) and only the valid part
    /// is stored. `bias` (starting at this tile's first element) is added as it is stored.
    @inline(__always)
    func tile(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, bPanelStride: Int,
              c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, columns: Int, overwrite: Bool,
              bias: GEMMBias = .none) {
        let (rowBias, columnBias) = bias.pointers
        // Up to 16 columns fit the narrow tile, which reads one panel; the wide one would compute
        // (and discard) a second.
        let kernel = columns <= nr ? gemmTile16 : gemmTile
        kernel(depth, a, b, columns <= nr ? 0 : bPanelStride, c, ldc, rows, columns, overwrite ? 1 : 0,
               rowBias, columnBias)
    }
}

extension GEMMBias {
    /// The bias as the C kernel takes it: a row bias or a column bias pointer, the other nil.
    var pointers: (row: UnsafePointer<Float>?, column: UnsafePointer<Float>?) {
        switch self {
        case .none: return (nil, nil)
        case .perRow(let bias): return (bias, nil)
        case .perColumn(let bias): return (nil, bias)
        }
    }
}
