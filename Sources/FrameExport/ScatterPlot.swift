/// A frame showing 2-D points, for watching a point cloud being denoised step by step.
///
/// The axis ranges are fixed up front (not fitted to the data) so that consecutive frames of an
/// animation share one coordinate system and the points, not the axes, appear to move. Points
/// are semi-transparent discs, so dense regions look darker, like a density estimate; points
/// outside the ranges are left out.
///
/// ```swift
/// var frame = ScatterPlot(xRange: -3...3, yRange: -3...3, title: "step 40 / 50")
/// frame.addPoints("data", points: dataset, color: RGBColor(hex: 0xBBBBBB))
/// frame.addPoints("samples", points: samples)
/// gif.addFrame(frame.render(), delay: 8)
/// ```
public struct ScatterPlot: Sendable {
    /// A named group of points drawn in one colour.
    public struct PointSet: Sendable {
        public var name: String
        public var x: [Double]
        public var y: [Double]
        public var color: RGBColor
        /// Disc radius in pixels.
        public var radius: Double
        /// 0...1; below 1 overlapping points build up colour.
        public var opacity: Float
    }

    public var xRange: ClosedRange<Double>
    public var yRange: ClosedRange<Double>
    public var title: String?
    /// A line of text under the plot, e.g. the timestep.
    public var caption: String?
    public var xLabel: String?
    public var yLabel: String?
    public var width: Int
    public var height: Int
    /// Shown only when there is at least one named point set.
    public var legendPosition: LegendPosition = .automatic
    public private(set) var pointSets: [PointSet] = []

    public init(xRange: ClosedRange<Double>, yRange: ClosedRange<Double>, title: String? = nil,
                caption: String? = nil, width: Int = 480, height: Int = 480) {
        precondition(xRange.upperBound > xRange.lowerBound && yRange.upperBound > yRange.lowerBound,
                     "scatter plot ranges must not be empty")
        precondition(width >= 160 && height >= 120, "a plot needs at least 160x120 pixels")
        self.xRange = xRange
        self.yRange = yRange
        self.title = title
        self.caption = caption
        self.width = width
        self.height = height
    }

    /// Adds points `(x[i], y[i])`. With no colour, the set gets the next tab10 colour.
    public mutating func addPoints(_ name: String, x: [Double], y: [Double], color: RGBColor? = nil,
                                   radius: Double = 2.5, opacity: Float = 0.7) {
        precondition(x.count == y.count, "point set '\(name)' has \(x.count) x values but \(y.count) y values")
        let color = color ?? PlotColors.series[pointSets.count % PlotColors.series.count]
        pointSets.append(PointSet(name: name, x: x, y: y, color: color, radius: radius, opacity: opacity))
    }

    /// Adds points given as `SIMD2<Float>` pairs, the form a toy 2-D diffusion model works with.
    public mutating func addPoints(_ name: String, points: [SIMD2<Float>], color: RGBColor? = nil,
                                   radius: Double = 2.5, opacity: Float = 0.7) {
        addPoints(name, x: points.map { Double($0.x) }, y: points.map { Double($0.y) },
                  color: color, radius: radius, opacity: opacity)
    }

    /// Draws the frame (with the caption bar under it when `caption` is set).
    public func render() -> RGBImage {
        let axes = layout()
        var image = axes.drawFrame()
        let scale = Double(axes.font.scale)
        let area = axes.area
        var centres = CoverageMask(width: width, height: height)  // where the legend should not go
        for set in pointSets {
            for (x, y) in zip(set.x, set.y) where xRange.contains(x) && yRange.contains(y) {
                guard let p = axes.pixel(x: x, y: y) else { continue }
                // Keep discs inside the plot area: pull centres near the edge inwards.
                let r = set.radius * scale
                let cx = min(max(p.x, Double(area.x0) + r), Double(area.x1) - r)
                let cy = min(max(p.y, Double(area.y0) + r), Double(area.y1) - r)
                image.fillCircle(centerX: cx, centerY: cy, radius: r, color: set.color, opacity: set.opacity)
                centres.mark(Int(cx), Int(cy))
            }
        }
        let named = pointSets.filter { !$0.name.isEmpty }
        axes.drawLegend(named.map { (name: $0.name, color: $0.color) },
                        marker: .dot(radius: (named.map(\.radius).max() ?? 2.5) * scale),
                        position: legendPosition, avoiding: centres, into: &image)
        guard let caption else { return image }
        return image.captioned(caption, style: .light)
    }

    /// Where the point `(x, y)` is drawn in `render()`'s image, in continuous pixel coordinates.
    public func pixelPosition(x: Double, y: Double) -> (x: Double, y: Double) {
        layout().pixel(x: x, y: y)!
    }

    private func layout() -> PlotAxes {
        PlotAxes(width: width, height: height, title: title, xLabel: xLabel, yLabel: yLabel,
                 xRange: xRange, yRange: yRange, yScale: .linear)
    }
}
