import TensorCore
import Testing
import FrameExport

struct ColorMapTests {
    @Test func endpointsMatchMatplotlib() {
        #expect(ColorMap.viridis.color(at: 0) == RGBColor(hex: 0x440154))
        #expect(ColorMap.viridis.color(at: 1) == RGBColor(hex: 0xFDE725))
        #expect(ColorMap.magma.color(at: 0) == RGBColor(hex: 0x000004))
        #expect(ColorMap.magma.color(at: 1) == RGBColor(hex: 0xFCFDBF))
        #expect(ColorMap.gray.color(at: 0) == .black && ColorMap.gray.color(at: 1) == .white)
    }

    @Test func interpolationStaysCloseToTheFullTable() {
        // Matplotlib's viridis entry 127 is (0.128729, 0.563265, 0.551229) -> (33, 144, 141);
        // entry 64 is (0.229739, 0.322361, 0.545706) -> (59, 82, 139).
        let middle = ColorMap.viridis.color(at: 127.0 / 255)
        #expect(abs(Int(middle.red) - 33) <= 1 && abs(Int(middle.green) - 144) <= 1 && abs(Int(middle.blue) - 141) <= 1)
        #expect(ColorMap.viridis.color(at: 64.0 / 255) == RGBColor(59, 82, 139))
    }

    @Test func outOfRangeAndNaNAreClamped() {
        #expect(ColorMap.viridis.color(at: -3) == ColorMap.viridis.color(at: 0))
        #expect(ColorMap.viridis.color(at: 7) == ColorMap.viridis.color(at: 1))
        #expect(ColorMap.magma.color(at: .nan) == ColorMap.magma.color(at: 0))
    }

    @Test func heatmapUsesTheDataRange() {
        let values = Tensor(shape: [1, 3], scalars: [-2, 3, 8])  // automatic range -2...8
        let image = RGBImage(heatmap: values)
        #expect(image.width == 3 && image.height == 1)
        #expect(image[0, 0] == ColorMap.viridis.color(at: 0))
        #expect(image[1, 0] == ColorMap.viridis.color(at: 0.5))
        #expect(image[2, 0] == ColorMap.viridis.color(at: 1))

        let fixed = RGBImage(heatmap: values, colorMap: .gray, range: 0...10)
        #expect(fixed.pixels == [0, 0, 0, 77, 77, 77, 204, 204, 204])  // 0.3 * 255 = 76.5 -> 77, 0.8 -> 204

        let flat = RGBImage(heatmap: [5, 5, 5, 5], width: 2, height: 2, colorMap: .gray)
        #expect(flat[1, 1] == RGBColor(128, 128, 128))
    }

    @Test func heatmapAcceptsLeadingOnes() {
        let image = RGBImage(heatmap: Tensor(shape: [1, 1, 2, 4], scalars: Array(0..<8).map(Float.init)))
        #expect(image.width == 4 && image.height == 2)
        #expect(image[3, 1] == ColorMap.viridis.color(at: 1))
    }

    @Test func overlayBlendsWithOpacity() {
        let base = RGBImage(width: 4, height: 4, color: RGBColor(200, 100, 0))
        let heat = RGBImage(width: 4, height: 4, color: RGBColor(0, 100, 200))
        #expect(base.overlaid(with: heat, opacity: 0) == base)
        #expect(base.overlaid(with: heat, opacity: 1) == heat)
        #expect(base.overlaid(with: heat, opacity: 0.5)[2, 2] == RGBColor(100, 100, 100))
        // A smaller heatmap is stretched over the whole image.
        let small = RGBImage(width: 2, height: 2, color: RGBColor(0, 100, 200))
        #expect(base.overlaid(with: small, opacity: 0.25)[3, 3] == RGBColor(150, 100, 50))
    }

    @Test func colorBarRunsThroughTheMap() {
        let bar = ColorMap.magma.colorBar(width: 100, height: 6)
        #expect(bar.width == 100 && bar.height == 6)
        #expect(bar[0, 3] == ColorMap.magma.color(at: 0))
        #expect(bar[99, 5] == ColorMap.magma.color(at: 1))
    }
}
