import Foundation

// Softmax, fast: the twin of `Reference.softmax` (Reference/Reference+Softmax.swift), eight
// lanes at a time with the vector `exp`, and the column form attention uses.

/// Softmax of `scale · row`, in place: `p_i = e^(s·(z_i − max z)) / Σ_j e^(s·(z_j − max z))`
/// (for `s > 0`). Attention passes `s = 1/√d` here instead of scaling the scores first.
///
/// Passes over the row: maximum, arguments, exponentials, their sum, division.
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

    // e^(s·(z − max)): the arguments first, then the exponentials in one call of the vector
    // kernel, then their sum, eight lanes wide.
    for i in 0..<count { row[i] = (row[i] - maximum) * scale }
    expInPlace(row, count: count)
    var sums = V()
    for i in stride(from: 0, to: vectorEnd, by: 8) { sums += raw.loadUnaligned(fromByteOffset: i * 4, as: V.self) }
    var sum = sums.sum()
    for i in vectorEnd..<count { sum += row[i] }

    let inverse = 1 / sum
    for i in 0..<count { row[i] *= inverse }
}

/// Softmax down each of the 16 columns of a row-major `(count, 16)` block, in place, except for
/// the division: leaves `p_ji = e^(s·(z_ji − max_j z_ji))` and returns the column sums `Σ_j p_ji`.
///
/// Attention keeps 16 queries' scores side by side like this (see `AttentionHead`): each row is
/// two vectors, and the division is done later, on the product with V. A column that is all
/// `-infinity` (every key masked out) comes back as zeros with sum 0.
public func softmaxColumns(_ block: UnsafeMutablePointer<Float>, count: Int, scale: Float) -> SIMD16<Float> {
    typealias V = SIMD8<Float>
    let raw = UnsafeMutableRawPointer(block)
    let rowBytes = 16 * MemoryLayout<Float>.stride

    var max0 = V(repeating: -.infinity), max1 = V(repeating: -.infinity)
    for j in 0..<count {
        let z0 = raw.loadUnaligned(fromByteOffset: j * rowBytes, as: V.self)
        let z1 = raw.loadUnaligned(fromByteOffset: j * rowBytes + 32, as: V.self)
        max0.replace(with: z0, where: z0 .> max0)
        max1.replace(with: z1, where: z1 .> max1)
    }
    // e^(s·z − s·max): one fused multiply-add per lane before the exponential. A fully masked
    // column takes max = 0, so its e^(−infinity) are zeros instead of NaN.
    max0.replace(with: 0, where: max0 .== -.infinity)
    max1.replace(with: 0, where: max1 .== -.infinity)
    let scaleV = V(repeating: scale), offset0 = max0 * scale, offset1 = max1 * scale
    var sum0 = V(), sum1 = V()
    // 64 rows (4 KB) at a time, so that the arguments, their exponentials and the sums all find
    // the rows in L1.
    for start in stride(from: 0, to: count, by: 64) {
        let rows = start..<min(count, start + 64)
        for j in rows {
            let z0 = raw.loadUnaligned(fromByteOffset: j * rowBytes, as: V.self)
            let z1 = raw.loadUnaligned(fromByteOffset: j * rowBytes + 32, as: V.self)
            raw.storeBytes(of: z0 * scaleV - offset0, toByteOffset: j * rowBytes, as: V.self)
            raw.storeBytes(of: z1 * scaleV - offset1, toByteOffset: j * rowBytes + 32, as: V.self)
        }
        expInPlace(block + rows.lowerBound * 16, count: rows.count * 16)
        for j in rows {
            sum0 += raw.loadUnaligned(fromByteOffset: j * rowBytes, as: V.self)
            sum1 += raw.loadUnaligned(fromByteOffset: j * rowBytes + 32, as: V.self)
        }
    }
    return SIMD16(lowHalf: sum0, highHalf: sum1)
}

extension Fast {
    /// `Reference.softmax` over the last dimension, rows shared out to the cores.
    public static func softmax(_ x: Tensor) -> Tensor {
        let width = x.shape[x.rank - 1], count = x.count
        var out = x
        out.withUnsafeMutablePointer { p in
            let rows = SendablePointer(p)
            Parallel.forEachChunk(of: count / width, minimumChunk: 8) { range in
                for r in range { softmaxRow(rows.pointer + r * width, count: width) }
            }
        }
        return out
    }
}
