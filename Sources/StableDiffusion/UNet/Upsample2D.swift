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
            return conv(x.upsampledNearest(height: outputSize.height, width: outputSize.width))
        }
        return conv(x.upsampledNearest2x())
    }
}

// MARK: - Training

extension Upsample2D {
    /// The backward of `callAsFunction(x, outputSize:)`, from the forward's input `x`: the
    /// convolution's, then each input pixel collects the gradients of its nearest-neighbour copies.
    public func backward(_ dOut: Tensor, input x: Tensor, gradients: inout Gradients) -> Tensor {
        let upsampled = x.upsampledNearest(height: dOut.shape[2], width: dOut.shape[3])
        let dUpsampled = conv.backward(dOut, input: upsampled, gradients: &gradients)
        return upsampleNearestBackward(dUpsampled, inputShape: x.shape)
    }
}
