import Foundation

/// How values along an axis map to distance.
public enum AxisScale: Sendable {
    /// Equal differences take equal space.
    case linear
    /// Equal *ratios* take equal space (1, 10, 100 are evenly spaced). Needed for quantities
    /// that span many orders of magnitude, like the signal-to-noise ratio of a noise schedule.
    case logarithmic
}

/// The corner of the plot area that holds the legend.
public enum LegendPosition: Sendable {
    /// The corner where the legend hides the least data (top right when several are free).
    case automatic
    case topRight, topLeft, bottomRight, bottomLeft
    /// No legend.
    case hidden
}

/// Shared look of all plots.
package enum PlotColors {
    /// Matplotlib's "tab10" colours, given to series in order when no colour is chosen.
    package static let series: [RGBColor] = [
        0x1F77B4, 0xFF7F0E, 0x2CA02C, 0xD62728, 0x9467BD, 0x8C564B, 0xE377C2, 0x7F7F7F, 0xBCBD22, 0x17BECF,
    ].map { RGBColor(hex: $0) }
    package static let background = RGBColor.white
    package static let grid = RGBColor(hex: 0xE6E6E6)
    package static let frame = RGBColor(hex: 0x4A4A4A)
    package static let text = RGBColor(hex: 0x333333)
    package static let title = RGBColor(hex: 0x111111)
    package static let legendBorder = RGBColor(hex: 0xC8C8C8)
}

/// The frame every plot is drawn in: margins, axis ranges, ticks, labels, and the mapping from
/// data coordinates to pixels. `LinePlot` and `ScatterPlot` compute one, draw it, then draw their
/// data through `pixel(x:y:)`.
package struct PlotAxes {
    package let width: Int
    package let height: Int
    package let title: String?
    package let xLabel: String?
    package let yLabel: String?
    package let yScale: AxisScale
    /// Axis ranges in *axis units*: data units, or log10 of them on a logarithmic axis.
    package let xAxis: ClosedRange<Double>
    package let yAxis: ClosedRange<Double>
    /// The rectangle the data is drawn in.
    let area: PixelRect
    package let font: BitmapFont
    package let titleFont: BitmapFont
    /// Tick positions in axis units, with their labels.
    package let xTicks: [(value: Double, label: String)]
    package let yTicks: [(value: Double, label: String)]
    /// Size of the basic spacing unit: 8 px, times the font scale.
    package let padding: Int

    /// Lays out a plot of `width` x `height` pixels. `yRange` is in data units and must be
    /// positive on a logarithmic axis.
    package init(width: Int, height: Int, title: String?, xLabel: String?, yLabel: String?,
         xRange: ClosedRange<Double>, yRange: ClosedRange<Double>, yScale: AxisScale) {
        self.width = width
        self.height = height
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.yScale = yScale
        xAxis = xRange
        yAxis = yScale == .linear ? yRange : log10(yRange.lowerBound)...log10(yRange.upperBound)

        let scale = max(1, width / 900)  // bigger text on big plots, like captions
        let font = BitmapFont(.small, scale: scale)
        self.font = font
        titleFont = BitmapFont(.giant, scale: scale)
        padding = 8 * scale
        let tickLength = 4 * scale

        // Vertical layout first: the y ticks depend on the plot height, and the left margin
        // depends on the widest y tick label.
        let top = padding + (title == nil ? font.characterHeight / 2 : titleFont.characterHeight + padding)
        let bottom = tickLength + padding / 2 + font.characterHeight
            + (xLabel == nil ? 0 : padding / 2 + font.characterHeight) + padding
        let plotHeight = max(1, height - top - bottom)
        yTicks = yScale == .linear
            ? PlotAxes.linearTicks(yAxis, approximateCount: max(2, plotHeight / 55))
            : PlotAxes.logTicks(yAxis)
        let widestY = yTicks.map { font.width(of: $0.label) }.max() ?? 0
        let left = padding + (yLabel == nil ? 0 : font.characterHeight + padding) + widestY + tickLength + padding / 2
        let right = padding + 3 * font.characterWidth
        area = PixelRect(x0: left, y0: top, x1: max(left + 1, width - right), y1: top + plotHeight)
        xTicks = PlotAxes.linearTicks(xAxis, approximateCount: max(2, area.width / 80))
    }

    /// Where the data point `(x, y)` lands, in continuous pixel coordinates (pixel `(i, j)` covers
    /// `[i, i+1) x [j, j+1)`). `nil` for `y <= 0` on a logarithmic axis. Points outside the ranges
    /// map outside the plot area.
    package func pixel(x: Double, y: Double) -> (x: Double, y: Double)? {
        let axisY: Double
        if yScale == .logarithmic {
            guard y > 0 else { return nil }
            axisY = log10(y)
        } else {
            axisY = y
        }
        let fx = (x - xAxis.lowerBound) / (xAxis.upperBound - xAxis.lowerBound)
        let fy = (axisY - yAxis.lowerBound) / (yAxis.upperBound - yAxis.lowerBound)
        return (Double(area.x0) + fx * Double(area.width), Double(area.y1) - fy * Double(area.height))
    }

    /// A white canvas with grid lines, the frame, ticks, tick labels, axis labels and title.
    package func drawFrame() -> RGBImage {
        var image = RGBImage(width: width, height: height, color: PlotColors.background)
        let line = font.scale, tickLength = 4 * font.scale
        let xPixel = { (v: Double) in Int((Double(area.x0) + (v - xAxis.lowerBound) / (xAxis.upperBound - xAxis.lowerBound) * Double(area.width)).rounded(.down)) }
        let yPixel = { (v: Double) in Int((Double(area.y1) - (v - yAxis.lowerBound) / (yAxis.upperBound - yAxis.lowerBound) * Double(area.height)).rounded(.down)) }

        for tick in xTicks {
            let x = min(xPixel(tick.value), area.x1 - 1)
            image.fillRectangle(x: x, y: area.y0, width: line, height: area.height, color: PlotColors.grid)
            image.fillRectangle(x: x, y: area.y1, width: line, height: tickLength, color: PlotColors.frame)
            image.drawText(tick.label, centerX: x, y: area.y1 + tickLength + padding / 2, font: font, color: PlotColors.text)
        }
        for tick in yTicks {
            let y = min(yPixel(tick.value), area.y1 - 1)
            image.fillRectangle(x: area.x0, y: y, width: area.width, height: line, color: PlotColors.grid)
            image.fillRectangle(x: area.x0 - tickLength, y: y, width: tickLength, height: line, color: PlotColors.frame)
            image.drawText(tick.label, x: area.x0 - tickLength - padding / 2 - font.width(of: tick.label),
                           y: y - font.characterHeight / 2, font: font, color: PlotColors.text)
        }
        // The frame sits just outside the plot area so that it never hides data.
        image.strokeRectangle(x: area.x0 - line, y: area.y0 - line, width: area.width + 2 * line,
                              height: area.height + 2 * line, color: PlotColors.frame)

        if let title {
            image.drawText(title, centerX: (area.x0 + area.x1) / 2, y: padding, font: titleFont, color: PlotColors.title)
        }
        if let xLabel {
            image.drawText(xLabel, centerX: (area.x0 + area.x1) / 2,
                           y: area.y1 + tickLength + padding + font.characterHeight, font: font, color: PlotColors.text)
        }
        if let yLabel {
            image.drawTextRotatedCounterclockwise(yLabel, x: padding,
                                                  y: (area.y0 + area.y1) / 2 - font.width(of: yLabel) / 2,
                                                  font: font, color: PlotColors.text)
        }
        return image
    }

    /// How a legend entry shows its series: a short line or a dot.
    package enum LegendMarker {
        case line(thickness: Double)
        case dot(radius: Double)
    }

    /// Draws a boxed legend in a corner of the plot area.
    ///
    /// `data` marks the pixels covered by data; with `.automatic`, the legend goes to the corner
    /// whose box would cover the fewest of them.
    func drawLegend(_ entries: [(name: String, color: RGBColor)], marker: LegendMarker,
                    position: LegendPosition, avoiding data: CoverageMask, into image: inout RGBImage) {
        guard position != .hidden, !entries.isEmpty else { return }
        let sample = 20 * font.scale
        let rowHeight = font.lineHeight + 2 * font.scale
        let inner = padding / 2 + font.scale
        let boxWidth = 2 * inner + sample + padding / 2 + (entries.map { font.width(of: $0.name) }.max() ?? 0)
        let boxHeight = 2 * inner + (entries.count - 1) * rowHeight + font.characterHeight

        func box(_ corner: LegendPosition) -> PixelRect {
            let left = corner == .topLeft || corner == .bottomLeft
            let top = corner == .topLeft || corner == .topRight
            let x = left ? area.x0 + padding : area.x1 - padding - boxWidth
            let y = top ? area.y0 + padding : area.y1 - padding - boxHeight
            return PixelRect(x0: x, y0: y, x1: x + boxWidth, y1: y + boxHeight)
        }
        let corners: [LegendPosition] = [.topRight, .topLeft, .bottomRight, .bottomLeft]
        let corner = position != .automatic ? position
            : corners.min { data.coveredPixels(in: box($0)) < data.coveredPixels(in: box($1)) }!
        let frame = box(corner)

        image.fillRectangle(x: frame.x0, y: frame.y0, width: boxWidth, height: boxHeight, color: PlotColors.background)
        image.strokeRectangle(x: frame.x0, y: frame.y0, width: boxWidth, height: boxHeight, color: PlotColors.legendBorder)
        for (index, entry) in entries.enumerated() {
            let rowTop = frame.y0 + inner + index * rowHeight
            let middle = Double(rowTop) + Double(font.characterHeight) / 2
            let sampleLeft = Double(frame.x0 + inner)
            switch marker {
            case .line(let thickness):
                var mask = CoverageMask(width: image.width, height: image.height)
                mask.addSegment(sampleLeft, middle, sampleLeft + Double(sample), middle, thickness: thickness, clip: frame)
                mask.paint(onto: &image, color: entry.color)
            case .dot(let radius):
                image.fillCircle(centerX: sampleLeft + Double(sample) / 2, centerY: middle,
                                 radius: max(radius, 3 * Double(font.scale)), color: entry.color)
            }
            image.drawText(entry.name, x: frame.x0 + inner + sample + padding / 2, y: rowTop, font: font,
                           color: PlotColors.text)
        }
    }

    // MARK: - Ticks

    /// "Nice" ticks: multiples of 1, 2 or 5 times a power of ten, about `approximateCount` of them.
    ///
    /// The raw step `span / count` is rounded to the next nice number: with raw step 0.37, the
    /// power of ten is 0.1, the leading factor 3.7 rounds to 5, and ticks fall every 0.5.
    package static func linearTicks(_ range: ClosedRange<Double>, approximateCount: Int) -> [(value: Double, label: String)] {
        let span = range.upperBound - range.lowerBound
        guard span > 0, span.isFinite else { return [(range.lowerBound, compactLabel(range.lowerBound))] }
        let raw = span / Double(approximateCount)
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let factor = raw / magnitude
        let step = (factor < 1.5 ? 1 : factor < 3 ? 2 : factor < 7 ? 5 : 10) * magnitude
        let decimals = max(0, -Int(log10(step).rounded(.down)))
        var ticks: [(Double, String)] = []
        var k = (range.lowerBound / step - 1e-9).rounded(.up)
        while k * step <= range.upperBound + step * 1e-9 {
            let value = k * step
            ticks.append((value, fixedLabel(value, decimals: decimals)))
            k += 1
        }
        return ticks
    }

    /// Ticks on a log10 axis (`range` in log10 units): every power of ten, thinned to at most
    /// nine; when the range spans less than two decades, 2x and 5x multiples are added.
    package static func logTicks(_ range: ClosedRange<Double>) -> [(value: Double, label: String)] {
        let first = Int((range.lowerBound - 1e-9).rounded(.up)), last = Int((range.upperBound + 1e-9).rounded(.down))
        var exponents = first <= last ? Array(first...last) : []
        if exponents.count > 9 {
            let every = (exponents.count + 8) / 9
            exponents = exponents.filter { ($0 - first) % every == 0 }
        }
        var values = exponents.map { pow(10, Double($0)) }
        if exponents.count < 3 {
            let low = Int(range.lowerBound.rounded(.down)), high = Int(range.upperBound.rounded(.up))
            values = (low...high).flatMap { e in [1.0, 2, 5].map { $0 * pow(10, Double(e)) } }
                .filter { log10($0) >= range.lowerBound - 1e-9 && log10($0) <= range.upperBound + 1e-9 }
        }
        return values.map { (log10($0), compactLabel($0)) }
    }

    /// A fixed number of decimals, and never "-0".
    package static func fixedLabel(_ value: Double, decimals: Int) -> String {
        let text = String(format: "%.\(decimals)f", value)
        return Double(text) == 0 ? String(format: "%.\(decimals)f", 0.0) : text
    }

    /// Short labels for values of any size: "0.001", "250", "1e-05" becomes "1e-5", "3e+06" "3e6".
    package static func compactLabel(_ value: Double) -> String {
        let magnitude = abs(value)
        if magnitude == 0 { return "0" }
        if magnitude >= 1e-3 && magnitude < 1e5 {
            return String(format: "%.4g", value)
        }
        let parts = String(format: "%.3g", value).split(separator: "e")
        guard parts.count == 2, let exponent = Int(parts[1]) else { return String(format: "%g", value) }
        return "\(parts[0])e\(exponent)"
    }
}
