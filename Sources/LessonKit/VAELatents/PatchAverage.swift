import FrameExport

extension RGBImage {
    /// The picture at the latent's resolution: each `factor` x `factor` patch replaced by its
    /// average colour (each channel's sum over the patch divided by factor², rounded down).
    ///
    /// The result is `width / factor` x `height / factor`; pixels past the last whole patch are
    /// left out.
    public func patchAverages(factor: Int) -> RGBImage {
        let (h, w) = (height / factor, width / factor)
        var averaged = RGBImage(width: w, height: h)
        for py in 0..<h {
            for px in 0..<w {
                var sum = SIMD3<Int>()
                for y in (py * factor)..<((py + 1) * factor) {
                    for x in (px * factor)..<((px + 1) * factor) {
                        let colour = self[x, y]
                        sum &+= SIMD3(Int(colour.red), Int(colour.green), Int(colour.blue))
                    }
                }
                let mean = sum / (factor * factor)
                averaged[px, py] = RGBColor(UInt8(mean.x), UInt8(mean.y), UInt8(mean.z))
            }
        }
        return averaged
    }
}
