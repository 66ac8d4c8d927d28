import Foundation
import Testing
import FrameExport

struct PlotTests {
    private let blue = RGBColor(hex: 0x1F77B4)    // first tab10 colour
    private let orange = RGBColor(hex: 0xFF7F0E)  // second

    /// The pixel that contains a continuous position.
    private func pixel(_ image: RGBImage, at position: (x: Double, y: Double)) -> RGBColor {
        image[Int(position.x.rounded(.down)), Int(position.y.rounded(.down))]
    }

    @Test func constantSeriesIsAHorizontalLine() throws {
        var plot = LinePlot(title: "constant", xLabel: "x", yLabel: "y")
        plot.legendPosition = .hidden
        plot.addSeries("half", x: (0...10).map(Double.init), y: Array(repeating: 0.5, count: 11))
        let image = plot.render()
        #expect(image.width == 640 && image.height == 420)

        let rows = try (1...9).map { x in try #require(plot.pixelPosition(x: Double(x), y: 0.5)) }
        // One row all along the line, in the series colour...
        #expect(Set(rows.map { Int($0.y.rounded(.down)) }).count == 1)
        for position in rows { #expect(pixel(image, at: position) == blue) }
        // ...and nothing of that colour a few pixels above or below.
        for position in rows {
            #expect(pixel(image, at: (position.x, position.y - 6)) != blue)
            #expect(pixel(image, at: (position.x, position.y + 6)) != blue)
        }
    }

    @Test func seriesGetTheirOwnColours() throws {
        var plot = LinePlot()
        plot.legendPosition = .hidden
        plot.addSeries("low", x: [0, 1], y: [0, 0])
        plot.addSeries("high", x: [0, 1], y: [1, 1], color: RGBColor(200, 0, 200))
        plot.addSeries("diagonal", x: [0, 1], y: [0, 1])
        let image = plot.render()
        #expect(plot.color(of: 0) == blue && plot.color(of: 2) == PlotColors.series[2])
        #expect(pixel(image, at: try #require(plot.pixelPosition(x: 0.3, y: 0))) == blue)
        #expect(pixel(image, at: try #require(plot.pixelPosition(x: 0.3, y: 1))) == RGBColor(200, 0, 200))
        #expect(pixel(image, at: try #require(plot.pixelPosition(x: 0.5, y: 0.5))) == PlotColors.series[2])
    }

    @Test func logarithmicAxisSpacesDecadesEvenly() throws {
        // SNR-like data: 1e-5 ... 1e3, a straight line on a log axis.
        var plot = LinePlot(yLabel: "SNR", yScale: .logarithmic)
        plot.legendPosition = .hidden
        let exponents = Array(-5...3)
        plot.addSeries("snr", x: exponents.map(Double.init), y: exponents.map { pow(10, Double($0)) })
        let image = plot.render()

        let decades = try exponents.map { try #require(plot.pixelPosition(x: Double($0), y: pow(10, Double($0)))) }
        let steps = zip(decades, decades.dropFirst()).map { $0.y - $1.y }
        #expect(steps.allSatisfy { abs($0 - steps[0]) < 1e-6 && $0 > 20 })  // equal, upward steps
        let halfway = try #require(plot.pixelPosition(x: 0.5, y: pow(10, 0.5)))
        #expect(pixel(image, at: halfway) == blue)
        #expect(plot.pixelPosition(x: 0, y: 0) == nil)
        #expect(plot.pixelPosition(x: 0, y: -1) == nil)
    }

    @Test func legendShowsSeriesColours() {
        var plot = LinePlot(width: 400, height: 300)
        plot.legendPosition = .topRight
        plot.addSeries("alpha_bar", x: [0, 1], y: [1, 0])
        plot.addSeries("sqrt(1 - alpha_bar)", x: [0, 1], y: [0, 1])
        let image = plot.render()
        // Both series colours appear inside the top-right legend region, next to the box border.
        let region = image.cropped(x: 200, y: 0, width: 200, height: 80)
        let colours = Set((0..<region.height).flatMap { y in (0..<region.width).map { region[$0, y] } })
        #expect(colours.contains(blue) && colours.contains(orange) && colours.contains(PlotColors.legendBorder))
    }

    @Test func automaticLegendAvoidsTheData() {
        // A rising diagonal covers the bottom-left and top-right corners: the legend must go to
        // the top left, the first free corner in the order top right, top left, ...
        var plot = LinePlot(width: 400, height: 300)
        plot.addSeries("rising", x: [0, 1], y: [0, 1])
        let image = plot.render()
        func borderPixels(x: Range<Int>, y: Range<Int>) -> Int {
            y.reduce(0) { total, row in total + x.filter { image[$0, row] == PlotColors.legendBorder }.count }
        }
        #expect(borderPixels(x: 0..<200, y: 0..<150) > 20)
        #expect(borderPixels(x: 200..<400, y: 0..<300) + borderPixels(x: 0..<200, y: 150..<300) == 0)
    }

    @Test func niceTicks() {
        #expect(PlotAxes.linearTicks(0...1000, approximateCount: 6).map(\.label) == ["0", "200", "400", "600", "800", "1000"])
        #expect(PlotAxes.linearTicks(0...1, approximateCount: 5).map(\.label) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        #expect(PlotAxes.linearTicks(-0.95...0.95, approximateCount: 4).map(\.label) == ["-0.5", "0.0", "0.5"])
        #expect(PlotAxes.logTicks(-5...3).map(\.label) == ["1e-5", "0.0001", "0.001", "0.01", "0.1", "1", "10", "100", "1000"])
        #expect(PlotAxes.logTicks(0...1).map(\.label) == ["1", "2", "5", "10"])
        #expect(PlotAxes.compactLabel(2.5e6) == "2.5e6" && PlotAxes.compactLabel(0.25) == "0.25")
    }

    @Test func scatterDrawsPointsInsideTheRange() {
        var scatter = ScatterPlot(xRange: -1...1, yRange: -1...1, width: 300, height: 300)
        scatter.addPoints("samples", x: [0, 0.5, 5], y: [0, -0.5, 0], color: RGBColor(255, 0, 0), radius: 3, opacity: 1)
        let image = scatter.render()
        #expect(image.width == 300 && image.height == 300)
        #expect(pixel(image, at: scatter.pixelPosition(x: 0, y: 0)) == RGBColor(255, 0, 0))
        #expect(pixel(image, at: scatter.pixelPosition(x: 0.5, y: -0.5)) == RGBColor(255, 0, 0))
        #expect(pixel(image, at: scatter.pixelPosition(x: 0.25, y: 0.25)) != RGBColor(255, 0, 0))

        // Out-of-range points are skipped: only the two in-range discs add red.
        var reds = 0
        for y in 0..<image.height { for x in 0..<image.width where image[x, y] == RGBColor(255, 0, 0) { reds += 1 } }
        #expect(reds > 0 && reds < 2 * 40)  // a radius-3 disc has about 28 solid pixels

        scatter.caption = "t = 500"
        #expect(scatter.render().height > 300)
    }
}
