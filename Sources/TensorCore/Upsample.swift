extension Tensor {
    /// Nearest-neighbour upsampling by 2: `(N, C, H, W)` → `(N, C, 2H, 2W)`, each pixel copied into a
    /// 2x2 block. The UNet's and the VAE decoder's Upsample layers do this, then a 3x3 convolution.
    public func upsampledNearest2x() -> Tensor {
        precondition(rank == 4, "upsampledNearest2x needs (N, C, H, W), got \(shape)")
        let planes = shape[0] * shape[1], h = shape[2], w = shape[3]
        return Tensor(shape: [shape[0], shape[1], 2 * h, 2 * w]) { out in
            withUnsafePointer { x in
                let src = SendablePointer(UnsafeMutablePointer(mutating: x))
                let dst = SendablePointer(out.baseAddress!)
                Parallel.forEach(planes) { p in
                    let from = src.pointer + p * h * w, to = dst.pointer + p * 4 * h * w
                    for y in 0..<h {
                        let line = to + 2 * y * 2 * w
                        for x in 0..<w {
                            line[2 * x] = from[y * w + x]
                            line[2 * x + 1] = from[y * w + x]
                        }
                        (line + 2 * w).update(from: line, count: 2 * w)   // the row below is the same
                    }
                }
            }
        }
    }
}
