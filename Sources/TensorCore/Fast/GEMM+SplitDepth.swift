// GEMM with its depth shared out to the cores: for products whose output is small and whose
// depth is long, such as a weight's gradient `dW = dYᵀ · X` (a 64x64 matrix summed over 2048
// tokens). Cutting a small C into tiles for the cores leaves each tile a few register tiles wide,
// every one of them packing and streaming the whole depth; cutting the depth instead gives each
// core the whole of C over its share of the sum,
//
//     C = A[:, k₀..<k₁] · B[k₀..<k₁, :] + A[:, k₁..<k₂] · B[k₁..<k₂, :] + …
//
// one part per core, each a full-speed serial GEMM, and then one pass that adds the parts. The
// parts are fixed by the thread count alone, so results repeat exactly from run to run.

/// Whether `gemm` shares out the depth instead of C (for operands not packed already, whose
/// depth slices are fixed): the depth is at least as long as C is wide or tall and gives every
/// core 256 steps or more, and C fits in a core's L2 cache (1 MB).
package func splitsDepth(m: Int, n: Int, k: Int) -> Bool {
    Parallel.threadCount > 1 && k >= max(m, n) && k >= 256 * Parallel.threadCount && m * n <= 1 << 18
}

/// `C (+)= A · B` as one serial GEMM per core over a part of the depth: the first part into C
/// itself (with the bias and `accumulate` as asked), the others into scratch matrices that are
/// then added to C, rows shared out to the cores.
func splitDepthGEMM(m: Int, n: Int, k: Int, a: PanelSource, b: PanelSource, c: UnsafeMutablePointer<Float>,
                    ldc: Int, accumulate: Bool, bias: GEMMBias, kernel: CPUKernels) {
    let parts = Parallel.threadCount
    // Part boundaries on multiples of 8, so that no part starts mid-vector in a packed panel.
    let bounds = (0...parts).map { $0 == parts ? k : k * $0 / parts / 8 * 8 }
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: (parts - 1) * m * n)
    defer { scratch.deallocate() }
    let output = SendablePointer(c), partials = SendablePointer(scratch)
    Parallel.forEach(parts) { part in
        let depth = bounds[part]..<bounds[part + 1]
        if part == 0 {
            serialGEMM(rows: 0..<m, columns: 0..<n, depth: depth, a: a, b: b, c: output.pointer, ldc: ldc,
                       accumulate: accumulate, bias: bias, kernel: kernel)
        } else {
            serialGEMM(rows: 0..<m, columns: 0..<n, depth: depth, a: a, b: b, c: partials.pointer + (part - 1) * m * n,
                       ldc: n, accumulate: false, kernel: kernel)
        }
    }
    Parallel.forEachChunk(of: m, minimumChunk: max(1, 4096 / n)) { rows in
        for part in 1..<parts {
            let partial = partials.pointer + (part - 1) * m * n
            for i in rows {
                let target = output.pointer + i * ldc, source = partial + i * n
                for j in 0..<n { target[j] += source[j] }
            }
        }
    }
}
