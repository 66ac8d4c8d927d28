import Foundation

// Softmax turns a row of scores into probabilities: `softmax(z)_i = e^(z_i − max z) / Σ_j e^(z_j − max z)`.
// Subtracting the row maximum changes nothing mathematically and keeps `exp` from overflowing.

/// Softmax of `scale · row`, in place: `p_i = e^(s·(z_i − max z)) / Σ_j e^(s·(z_j − max z))`
/// (for `s > 0`). Attention passes `s = 1/√d` here instead of scaling the scores first.
///
/// Three passes over the row (maximum, exponentials and their sum, division), eight lanes at a time.
@inline(__always)
public func softmaxRow(_ row: UnsafeMutablePointer<Float>, count: Int, scale: Float = 1) {
    typealias V = SIMD8<Float>
    let raw = UnsafeMutableRawPointer(row)
    let vectorEnd = count & ~7

    var maxima = V(repeating: -.infinity)
    for i in stride(from: 0, to: vectorEnd, by: 8) {
        let z = raw.loadUnaligned(fromByteOffset: i * 4, as: V.self)
        maxima = maxima.replacing(with: z, where: z .> maxima)
    }
    var maximum = maxima.max()
    for i in vectorEnd..<count { maximum = max(maximum, row[i]) }
    if maximum == -.infinity {
        // Every position masked out: define the row as all zeros rather than NaN.
        row.update(repeating: 0, count: count)
        return
    }

    let offset = V(repeating: maximum)
    var sums = V()
    for i in stride(from: 0, to: vectorEnd, by: 8) {
        let e = exp((raw.loadUnaligned(fromByteOffset: i * 4, as: V.self) - offset) * scale)
        raw.storeBytes(of: e, toByteOffset: i * 4, as: V.self)
        sums += e
    }
    var sum = sums.sum()
    for i in vectorEnd..<count {
        let e = expf((row[i] - maximum) * scale)
        row[i] = e
        sum += e
    }

    let inverse = 1 / sum
    for i in 0..<count { row[i] *= inverse }
}

extension Tensor {
    /// Softmax over the last dimension, row by row on all cores.
    public func softmax() -> Tensor {
        let width = shape[rank - 1]
        var out = self
        out.withUnsafeMutablePointer { p in
            let rows = SendablePointer(p)
            Parallel.forEachChunk(of: count / width, minimumChunk: 8) { range in
                for r in range { softmaxRow(rows.pointer + r * width, count: width) }
            }
        }
        return out
    }
}
