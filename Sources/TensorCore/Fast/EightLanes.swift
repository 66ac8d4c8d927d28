// Eight floats at a time: the vector loads and stores, and the sums taken eight lanes wide, that
// the kernels written in Swift share.

/// The eight floats from `p + i`.
@inline(__always)
func eight(_ p: UnsafePointer<Float>, _ i: Int = 0) -> SIMD8<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
}

/// Writes eight floats at `p + i`.
@inline(__always)
func store(_ x: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ i: Int = 0) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: x, as: SIMD8<Float>.self)
}

/// `Σ term(i)` over `0..<count`: `vector(i)` gives the eight terms from `i` (for `i` a multiple of 8
/// with eight numbers left), `scalar(i)` the single term at `i` (for the rest). Eight lanes in
/// Float over blocks of 1024 numbers, the blocks added up in Double: a 512x512 plane summed in
/// eight Float lanes alone would put 32768 terms in each.
@inline(__always)
func blockSums(_ count: Int, vector: (Int) -> SIMD8<Float>, scalar: (Int) -> Float) -> Double {
    var total = 0.0
    let vectorEnd = count & ~7
    for blockStart in stride(from: 0, to: vectorEnd, by: 1024) {
        var lanes = SIMD8<Float>()
        for i in stride(from: blockStart, to: min(vectorEnd, blockStart + 1024), by: 8) { lanes += vector(i) }
        total += Double(lanes.sum())
    }
    for i in vectorEnd..<count { total += Double(scalar(i)) }
    return total
}
