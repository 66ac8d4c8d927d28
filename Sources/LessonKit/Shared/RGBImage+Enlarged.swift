import FrameExport

extension RGBImage {
    /// The whole-number factor that brings a picture's longer side to at least `side` pixels:
    /// `max(1, side / max(width, height))`, rounded down, never below 1.
    public static func zoom(width: Int, height: Int, toAtLeast side: Int) -> Int {
        max(1, side / max(width, height))
    }

    /// The picture enlarged by `zoom(width:height:toAtLeast:)` without smoothing, so each pixel
    /// of a small picture shows as a sharp square.
    public func enlarged(toAtLeast side: Int) -> RGBImage {
        let factor = Self.zoom(width: width, height: height, toAtLeast: side)
        return resized(width: width * factor, height: height * factor, filter: .nearest)
    }
}
