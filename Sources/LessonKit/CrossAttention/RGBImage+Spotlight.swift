import FrameExport

extension RGBImage {
    /// The picture lit by a 0...1 map of `mapHeight` x `mapWidth`: each pixel times
    /// `0.15 + 0.85 · light`, with the map stretched bilinearly to the picture. Full brightness
    /// where the map is 1, a dim 15% where it is 0, so the places a word steers stand out and the
    /// rest stays recognisable.
    public func spotlit(by map: [Float], mapHeight: Int, mapWidth: Int) -> RGBImage {
        let light = AttentionMaps.resizeBilinear(map, height: mapHeight, width: mapWidth, toHeight: height, toWidth: width)
        var pixels = self.pixels
        for i in pixels.indices { pixels[i] = UInt8((Float(pixels[i]) * (0.15 + 0.85 * light[i / 3])).rounded()) }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// The mean absolute difference of two pictures of the same size, in grey levels (0-255) per
    /// channel value: `Σ |a − b| / (3 · width · height)`.
    public func meanAbsoluteDifference(to other: RGBImage) -> Double {
        precondition(pixels.count == other.pixels.count, "pictures of different sizes")
        let total = zip(pixels, other.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
        return Double(total) / Double(pixels.count)
    }
}
