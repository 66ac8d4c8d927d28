import Foundation

/// A line chart of one or more named series, drawn straight into an `RGBImage`.
///
/// Made for the curves of diffusion: the noise schedule `alpha_bar_t`, the signal-to-noise ratio
/// (which spans 1e-5 to 1e3 and needs a logarithmic y axis), losses, timings. Series get the
/// matplotlib "tab10" colours in order unless given one. Ranges are automatic unless set: x runs
/// exactly over the data, y over the data plus 5% air above and below.
///
/// ```swift
/// var plot = LinePlot(title: "Noise schedule", xLabel: "timestep t", yLabel: "SNR", yScale: .logarithmic)
/// plot.addSeries("SNR(t)", x: timesteps, y: snr)
/// try plot.render().writePNG(to: "output/snr.png")
/// ```
public struct LinePlot: Sendable {
    /// One named curve: points `(x[i], y[i])` joined in order. Non-finite values (and values <= 0 on
    /// a logarithmic axis) break the line.
    public struct Series: Sendable {
        public var name: String
        public var x: [Double]
        public var y: [Double]
        /// `nil`: the next colour of the tab10 cycle.
        public var color: RGBColor?
    }

    public var title: String?
    public var xLabel: String?
    public var yLabel: String?
    public var yScale: AxisScale
    /// Fixed x range, or `nil` for the data's range.
    public var xRange: ClosedRange<Double>?
    /// Fixed y range in data units (positive for a logarithmic axis), or `nil` for automatic.
    public var yRange: ClosedRange<Double>?
    public var width: Int
    public var height: Int
    /// Stroke width in pixels (scaled up with the fonts on very large plots).
    public var lineWidth: Double = 2
    public var legendPosition: LegendPosition = .automatic
    public private(set) var series: [Series] = []

    public init(title: String? = nil, xLabel: String? = nil, yLabel: String? = nil,
                yScale: AxisScale = .linear, width: Int = 640, height: Int = 420) {
        precondition(width >= 160 && height >= 120, "a plot needs at least 160x120 pixels")
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.yScale = yScale
        self.width = width
        self.height = height
    }

    /// Adds a curve through the points `(x[i], y[i])`.
    public mutating func addSeries(_ name: String, x: [Double], y: [Double], color: RGBColor? = nil) {
        precondition(x.count == y.count, "series '\(name)' has \(x.count) x values but \(y.count) y values")
        series.append(Series(name: name, x: x, y: y, color: color))
    }

    /// Adds a curve from arrays of another floating-point type, such as `Float` tensor data.
    /// (Generic, so that literals like `x: [0, 1]` still pick the `Double` version.)
    public mutating func addSeries<Value: BinaryFloatingPoint>(_ name: String, x: [Value], y: [Value],
                                                               color: RGBColor? = nil) {
        addSeries(name, x: x.map { Double($0) }, y: y.map { Double($0) }, color: color)
    }

    /// Adds a curve whose x values are the indices 0, 1, 2, ...
    public mutating func addSeries(_ name: String, y: [Double], color: RGBColor? = nil) {
        addSeries(name, x: (0..<y.count).map(Double.init), y: y, color: color)
    }

    /// Draws the plot.
    public func render() -> RGBImage {
        let axes = layout()
        var image = axes.drawFrame()
        let thickness = lineWidth * Double(axes.font.scale)
        var allData = CoverageMask(width: width, height: height)  // where the legend should not go
        for (index, item) in series.enumerated() {
            var mask = CoverageMask(width: width, height: height)
            var previous: (x: Double, y: Double)?
            for (x, y) in zip(item.x, item.y) {
                guard x.isFinite, y.isFinite, let point = axes.pixel(x: x, y: y) else {
                    previous = nil  // a gap in the data breaks the line
                    continue
                }
                let start = previous ?? point  // a lone point still shows as a dot
                mask.addSegment(start.x, start.y, point.x, point.y, thickness: thickness, clip: axes.area)
                previous = point
            }
            mask.paint(onto: &image, color: color(of: index))
            allData.combine(with: mask)
        }
        let entries = series.enumerated().map { (name: $1.name, color: color(of: $0)) }
        axes.drawLegend(entries, marker: .line(thickness: thickness), position: legendPosition,
                        avoiding: allData, into: &image)
        return image
    }

    /// Where the data point `(x, y)` is drawn in `render()`'s image, in continuous pixel
    /// coordinates; `nil` for `y <= 0` on a logarithmic axis.
    public func pixelPosition(x: Double, y: Double) -> (x: Double, y: Double)? {
        layout().pixel(x: x, y: y)
    }

    /// The colour series number `index` is drawn with.
    public func color(of index: Int) -> RGBColor {
        series[index].color ?? PlotColors.series[index % PlotColors.series.count]
    }

    // MARK: - Ranges

    private func layout() -> PlotAxes {
        PlotAxes(width: width, height: height, title: title, xLabel: xLabel, yLabel: yLabel,
                 xRange: xRange ?? automaticXRange(), yRange: yRange ?? automaticYRange(), yScale: yScale)
    }

    private func automaticXRange() -> ClosedRange<Double> {
        let xs = series.flatMap(\.x).filter(\.isFinite)
        guard let low = xs.min(), let high = xs.max() else { return 0...1 }
        return low < high ? low...high : (low - 1)...(high + 1)
    }

    /// Data range plus 5% on each side, computed in log10 space for a logarithmic axis.
    private func automaticYRange() -> ClosedRange<Double> {
        let logarithmic = yScale == .logarithmic
        let ys = series.flatMap(\.y).filter { $0.isFinite && (!logarithmic || $0 > 0) }
            .map { logarithmic ? log10($0) : $0 }
        guard let low = ys.min(), let high = ys.max() else { return logarithmic ? 0.1...10 : 0...1 }
        let span = high - low
        // A flat series still needs some height: +-10% of its value, or +-1 around zero
        // (+-half a decade on a log axis).
        let air = span > 0 ? span * 0.05 : (logarithmic ? 0.5 : (low == 0 ? 1 : abs(low) * 0.1))
        let range = (low - air)...(high + air)
        return logarithmic ? pow(10, range.lowerBound)...pow(10, range.upperBound) : range
    }
}
