extension RGBImage {
    /// Fills a rectangle with one colour; the parts outside the image are skipped.
    public mutating func fillRectangle(x: Int, y: Int, width rectWidth: Int, height rectHeight: Int,
                                       color: RGBColor) {
        let x0 = max(0, x), x1 = min(width, x + rectWidth)
        let y0 = max(0, y), y1 = min(height, y + rectHeight)
        guard x0 < x1 && y0 < y1 else { return }
        for row in y0..<y1 {
            for column in x0..<x1 { self[column, row] = color }
        }
    }

    /// Draws the 1-pixel outline of a rectangle (clipped to the image).
    public mutating func strokeRectangle(x: Int, y: Int, width rectWidth: Int, height rectHeight: Int,
                                         color: RGBColor) {
        fillRectangle(x: x, y: y, width: rectWidth, height: 1, color: color)
        fillRectangle(x: x, y: y + rectHeight - 1, width: rectWidth, height: 1, color: color)
        fillRectangle(x: x, y: y, width: 1, height: rectHeight, color: color)
        fillRectangle(x: x + rectWidth - 1, y: y, width: 1, height: rectHeight, color: color)
    }

    /// Copies `image` onto this one with its top-left corner at `(x, y)`; overhanging parts are cut.
    public mutating func paste(_ image: RGBImage, x: Int, y: Int) {
        let x0 = max(0, x), x1 = min(width, x + image.width)
        let y0 = max(0, y), y1 = min(height, y + image.height)
        guard x0 < x1 && y0 < y1 else { return }
        for row in y0..<y1 {
            let source = ((row - y) * image.width + (x0 - x)) * 3
            let target = (row * width + x0) * 3
            let count = (x1 - x0) * 3
            pixels.replaceSubrange(target..<(target + count), with: image.pixels[source..<(source + count)])
        }
    }

    /// Mixes `color` into the pixel at `(x, y)` with opacity `alpha` (0 = unchanged, 1 = replaced).
    /// Pixels outside the image are ignored, so shapes may be drawn partly off-canvas.
    mutating func blend(_ x: Int, _ y: Int, _ color: RGBColor, alpha: Float) {
        guard contains(x, y), alpha > 0 else { return }
        self[x, y] = alpha >= 1 ? color : self[x, y].mixed(with: color, amount: alpha)
    }

    /// Draws a filled, antialiased disc centred at `(centerX, centerY)` (pixel units; pixel `(i, j)`
    /// covers `[i, i+1) x [j, j+1)`, so its centre is `(i + 0.5, j + 0.5)`).
    ///
    /// Antialiasing by distance: a pixel whose centre is `d` away from the centre gets coverage
    /// `clamp(radius + 0.5 - d, 0, 1)`, a one-pixel-wide ramp across the edge instead of a hard step.
    public mutating func fillCircle(centerX: Double, centerY: Double, radius: Double,
                                    color: RGBColor, opacity: Float = 1) {
        let reach = radius + 1
        for row in Int((centerY - reach).rounded(.down))...Int((centerY + reach).rounded(.up)) {
            for column in Int((centerX - reach).rounded(.down))...Int((centerX + reach).rounded(.up)) {
                let dx = Double(column) + 0.5 - centerX, dy = Double(row) + 0.5 - centerY
                let coverage = min(max(radius + 0.5 - (dx * dx + dy * dy).squareRoot(), 0), 1)
                blend(column, row, color, alpha: Float(coverage) * opacity)
            }
        }
    }
}

/// A rectangle of pixels, `x0..<x1` by `y0..<y1`, used to keep plotted lines inside the axes.
struct PixelRect {
    var x0: Int, y0: Int, x1: Int, y1: Int
    var width: Int { x1 - x0 }
    var height: Int { y1 - y0 }
}

/// How much of each pixel a shape covers, collected before any colour is painted.
///
/// A polyline drawn segment by segment would blend twice where segments meet, leaving darker
/// dots at every joint. Collecting coverage first and keeping the maximum per pixel paints each
/// pixel once, so a line of many short segments looks like one smooth stroke.
struct CoverageMask {
    let width: Int
    let height: Int
    private(set) var values: [Float]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        values = [Float](repeating: 0, count: width * height)
    }

    /// Adds a straight stroke from `(x0, y0)` to `(x1, y1)` of the given thickness, only inside `clip`.
    ///
    /// Coverage of a pixel is `clamp(thickness / 2 + 0.5 - d, 0, 1)`, where `d` is the distance from
    /// the pixel centre to the segment: the same one-pixel edge ramp as `fillCircle`, which also
    /// gives round line caps.
    mutating func addSegment(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double,
                             thickness: Double, clip: PixelRect) {
        let half = thickness / 2
        let reach = half + 1
        let left = max(clip.x0, Int((min(x0, x1) - reach).rounded(.down)))
        let right = min(clip.x1 - 1, Int((max(x0, x1) + reach).rounded(.up)))
        let top = max(clip.y0, Int((min(y0, y1) - reach).rounded(.down)))
        let bottom = min(clip.y1 - 1, Int((max(y0, y1) + reach).rounded(.up)))
        guard left <= right && top <= bottom else { return }
        let dx = x1 - x0, dy = y1 - y0
        let lengthSquared = dx * dx + dy * dy
        for row in top...bottom {
            for column in left...right {
                let px = Double(column) + 0.5, py = Double(row) + 0.5
                // Closest point on the segment: project onto the line, clamp to the ends.
                let t = lengthSquared > 0 ? min(max(((px - x0) * dx + (py - y0) * dy) / lengthSquared, 0), 1) : 0
                let ex = px - (x0 + t * dx), ey = py - (y0 + t * dy)
                let coverage = Float(min(max(half + 0.5 - (ex * ex + ey * ey).squareRoot(), 0), 1))
                let i = row * width + column
                if coverage > values[i] { values[i] = coverage }
            }
        }
    }

    /// Marks one pixel as fully covered (ignored outside the mask).
    mutating func mark(_ x: Int, _ y: Int) {
        guard x >= 0 && x < width && y >= 0 && y < height else { return }
        values[y * width + x] = 1
    }

    /// Keeps, per pixel, the larger coverage of this mask and `other` (same size).
    mutating func combine(with other: CoverageMask) {
        for i in values.indices where other.values[i] > values[i] { values[i] = other.values[i] }
    }

    /// How many pixels inside `rect` have any coverage.
    func coveredPixels(in rect: PixelRect) -> Int {
        let x0 = max(0, rect.x0), x1 = min(width, rect.x1), y0 = max(0, rect.y0), y1 = min(height, rect.y1)
        guard x0 < x1 && y0 < y1 else { return 0 }
        var count = 0
        for row in y0..<y1 {
            for column in x0..<x1 where values[row * width + column] > 0 { count += 1 }
        }
        return count
    }

    /// Paints `color` into `image` wherever the mask is non-zero, using coverage as opacity.
    func paint(onto image: inout RGBImage, color: RGBColor) {
        for row in 0..<height {
            for column in 0..<width where values[row * width + column] > 0 {
                image.blend(column, row, color, alpha: values[row * width + column])
            }
        }
    }
}
