// Nearest-neighbour upsampling: how the UNet's and the VAE decoder's Upsample layers double a
// feature map's size before their 3x3 convolution smooths it.

extension Reference {
    /// PyTorch's `F.interpolate(mode="nearest")` to any size: every output pixel copies the input
    /// pixel its position falls on,
    ///
    ///     out[n, c, oy, ox] = x[n, c, ⌊oy · H/H_out⌋, ⌊ox · W/W_out⌋]
    ///
    /// with the ratio `H/H_out` computed in Float32, as PyTorch does. Doubling (`H_out = 2H`)
    /// copies each pixel into a 2x2 block.
    ///
    /// - Parameter x: `(N, C, H, W)`.
    /// - Returns: `(N, C, outHeight, outWidth)`.
    public static func upsampleNearest(_ x: Tensor, height outH: Int, width outW: Int) -> Tensor {
        let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var out = [Float](repeating: 0, count: N * C * outH * outW)
        for n in 0..<N {
            for c in 0..<C {
                for oy in 0..<outH {
                    for ox in 0..<outW {
                        let iy = nearestSource(oy, from: H, to: outH), ix = nearestSource(ox, from: W, to: outW)
                        out[((n * C + c) * outH + oy) * outW + ox] = x.scalars[((n * C + c) * H + iy) * W + ix]
                    }
                }
            }
        }
        return Tensor(shape: [N, C, outH, outW], scalars: out)
    }
}

/// The input index nearest-neighbour resizing reads for output index `i`: `⌊i · (inSize / outSize)⌋`,
/// the ratio in Float32 (as PyTorch computes it), clamped to the last input index.
func nearestSource(_ i: Int, from inSize: Int, to outSize: Int) -> Int {
    min(Int((Float(i) * (Float(inSize) / Float(outSize))).rounded(.down)), inSize - 1)
}

// MARK: - Backward

extension Reference {
    /// The gradient of `upsampleNearest`: every output pixel copied one input pixel, so each input
    /// pixel collects the gradients of all its copies (four of them when doubling):
    ///
    ///     dx[n, c, iy, ix] = Σ dOut[n, c, oy, ox]   over the (oy, ox) that read (iy, ix)
    public static func upsampleNearestBackward(_ dOut: Tensor, inputShape: [Int]) -> Tensor {
        let (N, C, H, W) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let outH = dOut.shape[2], outW = dOut.shape[3]
        var dx = [Float](repeating: 0, count: N * C * H * W)
        for n in 0..<N {
            for c in 0..<C {
                for oy in 0..<outH {
                    for ox in 0..<outW {
                        let iy = nearestSource(oy, from: H, to: outH), ix = nearestSource(ox, from: W, to: outW)
                        dx[((n * C + c) * H + iy) * W + ix] += dOut.scalars[((n * C + c) * outH + oy) * outW + ox]
                    }
                }
            }
        }
        return Tensor(shape: inputShape, scalars: dx)
    }
}
