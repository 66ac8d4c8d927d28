import TensorCore

/// A 2-D convolution layer (PyTorch's `nn.Conv2d`, square kernel, zero padding).
public struct Conv2d: Sendable {
    public let storedWeight: Parameter  // (C_out, C_in, k, k), as the checkpoint stores it
    public let bias: Tensor?            // (C_out)

    /// The kernel as Float32 `(C_out, C_in, k, k)`.
    public var weight: Tensor { storedWeight.value }
    public let stride: Int
    public let padding: Int
    /// The layer's key prefix in the checkpoint, e.g. `conv_in.`.
    public let key: String

    public init(_ weights: Weights, inChannels: Int, outChannels: Int, kernelSize: Int,
                stride: Int = 1, padding: Int = 0, bias: Bool = true) throws {
        storedWeight = try weights.parameter("weight", shape: [outChannels, inChannels, kernelSize, kernelSize])
        self.bias = bias ? try weights.tensor("bias", shape: [outChannels]) : nil
        self.stride = stride
        self.padding = padding
        key = weights.prefix
    }

    /// `(N, C_in, H, W)` → `(N, C_out, H_out, W_out)`. A 16-bit kernel is widened inside the
    /// matrix multiplication.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch storedWeight.storage {
        case .float32(let weight): return x.conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
        case .halves(let weight): return x.conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
        }
    }

    /// The backward of `callAsFunction(x)`: adds dW and db to `gradients` under this layer's keys
    /// and returns dx.
    public func backward(_ dy: Tensor, input x: Tensor, gradients: inout Gradients) -> Tensor {
        let g = conv2dBackward(dy, input: x, weight: weight, stride: stride, padding: padding)
        gradients.add(g.dWeight, for: key + "weight")
        if bias != nil { gradients.add(g.dBias, for: key + "bias") }
        return g.dx
    }
}
