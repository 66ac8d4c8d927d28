import TensorCore

extension RGBImage {
    /// Paints a matrix of numbers with a colour map: one pixel per value.
    ///
    /// `values` is `(H, W)`, or `(1, H, W)` / `(1, 1, H, W)`. Each value `v` becomes
    /// `colorMap.color(at: (v - low) / (high - low))`. With `range` `nil`, `low` and `high` are the
    /// smallest and largest finite values, so the full colour range is always used; pass a fixed
    /// range to compare several heatmaps on one scale. A constant matrix maps to the middle colour.
    ///
    /// ```swift
    /// let attention = RGBImage(heatmap: probabilities, colorMap: .magma)    // (64, 64)
    ///     .resized(width: 512, height: 512, filter: .nearest)
    /// ```
    public init(heatmap values: Tensor, colorMap: ColorMap = .viridis, range: ClosedRange<Float>? = nil) {
        let shape = values.shape
        precondition(shape.count >= 2 && shape.dropLast(2).allSatisfy { $0 == 1 },
                     "a heatmap needs an (H, W) tensor (leading dimensions of 1 allowed), got \(shape)")
        self.init(heatmap: values.scalars, width: shape[shape.count - 1], height: shape[shape.count - 2],
                  colorMap: colorMap, range: range)
    }

    /// Paints `width * height` values given row by row; see `init(heatmap:colorMap:range:)` for a tensor.
    public init(heatmap values: [Float], width: Int, height: Int, colorMap: ColorMap = .viridis,
                range: ClosedRange<Float>? = nil) {
        precondition(values.count == width * height, "\(values.count) values cannot fill \(width)x\(height)")
        let (low, high) = range.map { ($0.lowerBound, $0.upperBound) } ?? Self.finiteExtremes(values)
        let span = high - low
        var image = RGBImage(width: width, height: height)
        for (i, value) in values.enumerated() {
            image[i % width, i / width] = colorMap.color(at: span > 0 ? (value - low) / span : 0.5)
        }
        self = image
    }

    /// Smallest and largest finite value; (0, 0) when there is none.
    private static func finiteExtremes(_ values: [Float]) -> (Float, Float) {
        var low = Float.infinity, high = -Float.infinity
        for value in values where value.isFinite {
            low = min(low, value)
            high = max(high, value)
        }
        return low <= high ? (low, high) : (0, 0)
    }

    /// This image with `heatmap` laid over it at the given opacity (0 = invisible, 1 = opaque).
    ///
    /// A heatmap of another size is first stretched to this image's size with bilinear
    /// resampling, so a 16x16 attention map can be laid straight over a 512x512 picture.
    ///
    /// ```swift
    /// let overlay = photo.overlaid(with: RGBImage(heatmap: attention, colorMap: .magma), opacity: 0.6)
    /// ```
    public func overlaid(with heatmap: RGBImage, opacity: Float = 0.5) -> RGBImage {
        let layer = (heatmap.width == width && heatmap.height == height)
            ? heatmap : heatmap.resized(width: width, height: height)
        let alpha = min(max(opacity, 0), 1)
        var output = self
        for i in 0..<pixels.count {
            output.pixels[i] = UInt8((Float(pixels[i]) * (1 - alpha) + Float(layer.pixels[i]) * alpha).rounded())
        }
        return output
    }
}
