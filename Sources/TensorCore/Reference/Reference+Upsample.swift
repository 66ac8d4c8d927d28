// Nearest-neighbour upsampling: how the UNet's and the VAE decoder's Upsample layers double a
// feature map's size before their 3x3 convolution smooths it.

extension Reference {
    /// PyTorch's `F.interpolate(mode="nearest")` to any size: every output pixel copies the input
    /// pixel its position falls on,
    ///
    ///     out[n, c, y, x] = in[n, c, ⌊y · H/H_out⌋, ⌊x · W/W_out⌋]
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
                for y in 0..<outH {
                    for x_ in 0..<outW {
                        let sy = nearestSource(y, from: H, to: outH), sx = nearestSource(x_, from: W, to: outW)
                        out[((n * C + c) * outH + y) * outW + x_] = x.scalars[((n * C + c) * H + sy) * W + sx]
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
