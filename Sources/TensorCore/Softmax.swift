import Foundation

// Softmax turns a row of scores into probabilities: `softmax(z)_i = e^(z_i − max z) / Σ_j e^(z_j − max z)`.
// Subtracting the row maximum changes nothing mathematically and keeps `exp` from overflowing.

/// Softmax of one row, in place.
@inline(__always)
public func softmaxRow(_ row: UnsafeMutablePointer<Float>, count: Int) {
    var maximum = -Float.infinity
    for i in 0..<count { maximum = max(maximum, row[i]) }
    if maximum == -Float.infinity {
        // Every position masked out: define the row as all zeros rather than NaN.
        row.update(repeating: 0, count: count)
        return
    }
    var sum: Float = 0
    for i in 0..<count {
        let e = expf(row[i] - maximum)
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
