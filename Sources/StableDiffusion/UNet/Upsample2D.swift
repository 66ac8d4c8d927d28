import TensorCore

/// Doubles the resolution of a feature map: nearest-neighbour copies, then a 3x3 convolution that
/// smooths the blocky result (diffusers' `Upsample2D` with `use_conv=True`).
///
///     h = nearest(x)       (N, C, H, W) → (N, C, 2H, 2W)
///     out = conv(h)        (N, C, 2H, 2W), padding 1
///
/// When the latent size is not a multiple of 8, downsampling rounded some sizes up (15 → 8), and
/// doubling back (8 → 16) would miss the skip connection waiting on the other side (15). As in
/// diffusers, the UNet then passes the skip's size as `outputSize` and the nearest-neighbour step
/// stretches to exactly that size.
public struct Upsample2D: Sendable {
    public let conv: Conv2d   // (C, C, 3, 3)

    public init(_ weights: Weights, channels: Int) throws {
        conv = try Conv2d(weights["conv"], inChannels: channels, outChannels: channels, kernelSize: 3, padding: 1)
    }

    /// `(N, C, H, W)` → `(N, C, 2H, 2W)`, or `(N, C, outputSize.height, outputSize.width)`.
    public func callAsFunction(_ x: Tensor, outputSize: (height: Int, width: Int)? = nil) -> Tensor {
        let (height, width) = (x.shape[2], x.shape[3])
        if let outputSize, outputSize != (2 * height, 2 * width) {
            return conv(upsampledNearest(x, height: outputSize.height, width: outputSize.width))
        }
        return conv(x.upsampledNearest2x())
    }
}

/// Nearest-neighbour resize to any size, PyTorch's `F.interpolate(mode="nearest", size=...)`:
/// output pixel `(y, x)` copies input pixel `(⌊y · H_in / H_out⌋, ⌊x · W_in / W_out⌋)`, with the
/// ratio computed in Float32 as PyTorch does.
func upsampledNearest(_ x: Tensor, height outHeight: Int, width outWidth: Int) -> Tensor {
    let (planes, height, width) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    func sourceIndex(_ i: Int, _ inSize: Int, _ outSize: Int) -> Int {
        min(Int((Float(i) * (Float(inSize) / Float(outSize))).rounded(.down)), inSize - 1)
    }
    let rows = (0..<outHeight).map { sourceIndex($0, height, outHeight) }
    let columns = (0..<outWidth).map { sourceIndex($0, width, outWidth) }
    var out = Tensor.zeros([x.shape[0], x.shape[1], outHeight, outWidth])
    x.withUnsafePointer { source in
        out.withUnsafeMutablePointer { target in
            for p in 0..<planes {
                for (y, sy) in rows.enumerated() {
                    for (x, sx) in columns.enumerated() {
                        target[(p * outHeight + y) * outWidth + x] = source[(p * height + sy) * width + sx]
                    }
                }
            }
        }
    }
    return out
}
