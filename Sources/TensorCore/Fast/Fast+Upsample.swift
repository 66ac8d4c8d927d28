// Nearest-neighbour upsampling, fast: the twin of `Reference.upsampleNearest`
// (Reference/Reference+Upsample.swift), one channel plane per piece of work.

extension Fast {
    /// `Reference.upsampleNearest`. Doubling, the usual case, copies each pixel twice along its
    /// row and then the whole row once; other sizes look up their source rows and columns once.
    public static func upsampleNearest(_ x: Tensor, height outHeight: Int, width outWidth: Int) -> Tensor {
        let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
        let doubling = outHeight == 2 * h && outWidth == 2 * w
        let rows = (0..<outHeight).map { nearestSource($0, from: h, to: outHeight) }
        let columns = (0..<outWidth).map { nearestSource($0, from: w, to: outWidth) }
        return Tensor(shape: [x.shape[0], x.shape[1], outHeight, outWidth]) { out in
            x.withUnsafePointer { x in
                let src = SendablePointer(UnsafeMutablePointer(mutating: x))
                let dst = SendablePointer(out.baseAddress!)
                Parallel.forEach(planes) { p in
                    let from = src.pointer + p * h * w, to = dst.pointer + p * outHeight * outWidth
                    if doubling {
                        for y in 0..<h {
                            let line = to + 2 * y * 2 * w
                            for x in 0..<w {
                                line[2 * x] = from[y * w + x]
                                line[2 * x + 1] = from[y * w + x]
                            }
                            (line + 2 * w).update(from: line, count: 2 * w)   // the row below is the same
                        }
                    } else {
                        for (y, sy) in rows.enumerated() {
                            for (x, sx) in columns.enumerated() { to[y * outWidth + x] = from[sy * w + sx] }
                        }
                    }
                }
            }
        }
    }
}

extension Fast {
    /// `Reference.upsampleNearestBackward`, one channel plane per piece of work: each input pixel
    /// adds up the gradients of the output pixels that copied it, found as in the forward.
    public static func upsampleNearestBackward(_ dOut: Tensor, inputShape: [Int]) -> Tensor {
        let planes = inputShape[0] * inputShape[1], h = inputShape[2], w = inputShape[3]
        let outHeight = dOut.shape[2], outWidth = dOut.shape[3]
        let rows = (0..<outHeight).map { nearestSource($0, from: h, to: outHeight) }
        let columns = (0..<outWidth).map { nearestSource($0, from: w, to: outWidth) }
        return Profiler.measure("elementwise") {
            computing(inputShape, from: dOut, pieces: planes, minimumChunk: max(1, 4096 / max(1, outHeight * outWidth))) { dy, dx, range in
                for p in range {
                    let from = dy + p * outHeight * outWidth, to = dx + p * h * w
                    to.update(repeating: 0, count: h * w)
                    for (y, sy) in rows.enumerated() {
                        for (x, sx) in columns.enumerated() { to[sy * w + sx] += from[y * outWidth + x] }
                    }
                }
            }
        }
    }
}
