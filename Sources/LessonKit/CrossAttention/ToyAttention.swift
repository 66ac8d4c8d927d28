import Foundation
import TensorCore

/// Cross-attention small enough to follow with pencil and paper.
///
/// A 16x16 picture has four regions: sky, sun, grass and a house. Every pixel asks a question
/// (its query, 4 numbers); three words and a start token answer with keys (4 numbers each) and
/// carry values (a colour each). The feature dimensions mean, in order: "sky-like", "sun-like",
/// "grass-like" and "present at all".
///
///     region   query q          word      key k           value v (R, G, B)
///     sky      (2, 0, 0, 1)     <start>   (0, 0, 0, 2)    ( 0.0,  0.0,  0.0)
///     sun      (0, 2, 0, 1)     sky       (2, 0, 0, 0)    (-0.6, -0.1,  0.8)
///     grass    (0, 0, 2, 1)     sun       (0, 2, 0, 0)    ( 0.9,  0.8, -0.5)
///     house    (0, 0, 0, 1)     grass     (0, 0, 2, 0)    (-0.5,  0.6, -0.6)
///
/// With d = 4, a sky pixel scores `q·k / √4`: 1 for <start>, 2 for "sky", 0 for "sun" and "grass".
/// The house has no word of its own, so it leans on <start>, as real pixels do.
public enum ToyAttention {
    /// The four regions of the picture, in the order of their queries.
    public static let regions = ["sky", "sun", "grass", "house"]
    /// The start token and the three words, in the order of their keys.
    public static let words = ["<start>", "sky", "sun", "grass"]
    /// The picture's side in pixels.
    public static let size = 16

    /// Each region's query q (4 numbers).
    public static let regionQueries: [[Float]] = [[2, 0, 0, 1], [0, 2, 0, 1], [0, 0, 2, 1], [0, 0, 0, 1]]
    /// Each word's key k (4 numbers).
    public static let wordKeys: [[Float]] = [[0, 0, 0, 2], [2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]]
    /// Each word's value v: the colour it paints (R, G, B in [−1, 1]).
    public static let wordValues: [[Float]] = [[0, 0, 0], [-0.6, -0.1, 0.8], [0.9, 0.8, -0.5], [-0.5, 0.6, -0.6]]
    /// The colours the scene is drawn in (for the picture only; the model never sees them).
    public static let regionColours: [[Float]] = [[-0.5, 0.0, 0.8], [0.95, 0.8, -0.4], [-0.4, 0.5, -0.5], [0.4, 0.0, -0.2]]

    /// Which region covers the point (u, v) in [0, 1]², v downwards.
    public static func region(_ u: Double, _ v: Double) -> Int {
        if u > 0.12 && u < 0.45 && v > 0.42 && v < 0.80 { return 3 }   // house
        if v > 0.66 { return 2 }                                         // grass
        if hypot(u - 0.74, v - 0.24) < 0.14 { return 1 }                 // sun
        return 0                                                         // sky
    }

    /// How much of each region covers each pixel, from 4x4 samples: `(size², 4)`, rows add to 1.
    public static func coverage() -> [[Float]] {
        (0..<(size * size)).map { pixel in
            var share = [Float](repeating: 0, count: regions.count)
            for sy in 0..<4 {
                for sx in 0..<4 {
                    let u = (Double(pixel % size) + (Double(sx) + 0.5) / 4) / Double(size)
                    let v = (Double(pixel / size) + (Double(sy) + 0.5) / 4) / Double(size)
                    share[region(u, v)] += 1 / 16
                }
            }
            return share
        }
    }

    /// Rows of `weights` mixed with `table`: `(pixels, regions) · (regions, k)`.
    public static func mix(_ weights: [[Float]], _ table: [[Float]]) -> Tensor {
        Tensor(shape: [weights.count, weights[0].count], scalars: weights.flatMap { $0 })
            .matmul(Tensor(shape: [table.count, table[0].count], scalars: table.flatMap { $0 }))
    }

    /// The four regions' queries against the four words, step by step: `(Q Kᵀ / √d, softmax, output)`.
    public static func byHand() -> (scores: Tensor, probabilities: Tensor, output: Tensor) {
        let q = Tensor(shape: [4, 4], scalars: regionQueries.flatMap { $0 })       // (regions, d)
        let k = Tensor(shape: [4, 4], scalars: wordKeys.flatMap { $0 })            // (words, d)
        let v = Tensor(shape: [4, 3], scalars: wordValues.flatMap { $0 })          // (words, 3)
        let scores = q.matmul(k.transposed) * (1 / Float(4).squareRoot())         // (regions, words)
        let probabilities = scores.softmax()                                       // each row adds to 1
        return (scores, probabilities, probabilities.matmul(v))                    // (regions, 3)
    }

    /// Every pixel through `scaledDotProductAttention`, the function the UNet calls: the output
    /// `(1, size², 3)` and the probabilities `(size², words)`.
    public static func wholePicture() -> (output: Tensor, probabilities: [Float]) {
        let queries = mix(coverage(), regionQueries).reshaped([1, size * size, 4])   // (1, T, d)
        let keys = Tensor(shape: [1, 4, 4], scalars: wordKeys.flatMap { $0 })        // (1, S, d)
        let values = Tensor(shape: [1, 4, 3], scalars: wordValues.flatMap { $0 })    // (1, S, 3)
        var probabilities = [Float](repeating: 0, count: size * size * words.count)
        let output = scaledDotProductAttention(query: queries, key: keys, value: values, heads: 1) { _, _, rows, p in
            for (i, value) in p.enumerated() { probabilities[rows.lowerBound * words.count + i] = value }
        }
        return (output, probabilities)
    }

    /// `(T, 3)` pixel rows → `(1, 3, size, size)`.
    public static func asPicture(_ rows: Tensor) -> Tensor {
        rows.transposed.reshaped([1, 3, size, size])
    }

    /// How far `wholePicture` is from `byHand` on the top-left pixel, which is pure sky: the
    /// largest difference over R, G, B (float rounding only, when both are right).
    public static func wholePictureDifference() -> Float {
        let whole = wholePicture().output, result = byHand().output            // (1, 256, 3), (4, 3)
        return (0..<3).map { abs(whole[0, 0, $0] - result[0, $0]) }.max()!
    }

    /// The pixels on a border between regions: those no region covers entirely.
    public static var borderPixelCount: Int {
        coverage().filter { $0.max()! < 1 }.count
    }
}
