import Foundation

/// A histogram scaled to a probability density, so it can be drawn as a curve next to the
/// standard normal density.
///
/// `bins` equal bins cover `range`; a value v falls in bin ⌊(v − low) / (high − low) · bins⌋, and
/// values outside the range are not counted. Each count is divided by `n · width` (n: all values,
/// width = (high − low) / bins), so the densities integrate to the share of values inside the range.
public struct Histogram: Equatable, Sendable {
    /// The middle of each bin: low + (i + ½) · width.
    public let centres: [Double]
    /// The density in each bin: count_i / (n · width).
    public let densities: [Double]

    /// Bins `values` into `bins` bins over `range`.
    public init<Values: Collection>(_ values: Values, bins: Int = 80, range: ClosedRange<Double> = -4...4)
    where Values.Element == Float {
        precondition(bins > 0 && range.upperBound > range.lowerBound, "a histogram needs bins over a range")
        let low = range.lowerBound, high = range.upperBound
        centres = (0..<bins).map { low + (Double($0) + 0.5) * (high - low) / Double(bins) }
        var counts = [Double](repeating: 0, count: bins)
        for v in values {
            // Rounded down, so values just below `low` do not land in the first bin.
            let position = ((Double(v) - low) / (high - low) * Double(bins)).rounded(.down)
            if position >= 0 && position < Double(bins) { counts[Int(position)] += 1 }
        }
        let scale = Double(bins) / (high - low) / Double(max(values.count, 1))   // counts → density
        densities = counts.map { $0 * scale }
    }

    /// The standard normal density φ(x) = e^(−x²/2) / √(2π).
    public static func standardNormalDensity(_ x: Double) -> Double {
        exp(-x * x / 2) / (2 * Double.pi).squareRoot()
    }
}
