import TensorCore

/// Halves the resolution of a feature map with a learned 3x3 convolution of stride 2
/// (diffusers' `Downsample2D` with `use_conv=True`), keeping the channel count.
///
///     out = conv(x)        (N, C, H, W) → (N, C, ⌈H/2⌉, ⌈W/2⌉)    (with padding 1: ⌊(H + 2 − 3)/2⌋ + 1)
///
/// A strided convolution rather than pooling lets the network choose what to keep.
public struct Downsample2D: Sendable {
    public let conv: Conv2d   // (C, C, 3, 3), stride 2

    public init(_ weights: Weights, channels: Int, padding: Int = 1) throws {
        conv = try Conv2d(weights["conv"], inChannels: channels, outChannels: channels, kernelSize: 3,
                          stride: 2, padding: padding)
    }

    /// `(N, C, H, W)` → `(N, C, ⌈H/2⌉, ⌈W/2⌉)`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv(x)
    }
}

// MARK: - Training

extension Downsample2D {
    /// The backward of `callAsFunction(x)`: the convolution's (its input is all it needs).
    public func backward(_ dOut: Tensor, input x: Tensor, gradients: inout Gradients) -> Tensor {
        conv.backward(dOut, input: x, gradients: &gradients)
    }
}
