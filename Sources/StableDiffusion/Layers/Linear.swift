import TensorCore

/// A fully connected layer, `y = x Wᵀ + b` (PyTorch's `nn.Linear`).
public struct Linear: Sendable {
    public let storedWeight: Parameter  // (D_out, D_in), as the checkpoint stores it
    public let bias: Tensor?            // (D_out)
    /// The layer's key prefix in the checkpoint, e.g. `mid_block.attentions.0.proj_in.`.
    public let key: String

    /// The weight as Float32 `(D_out, D_in)`.
    public var weight: Tensor { storedWeight.value }

    public init(_ weights: Weights, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        storedWeight = try weights.parameter("weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? try weights.tensor("bias", shape: [outFeatures]) : nil
        key = weights.prefix
    }

    /// A layer from weights already loaded; `key` is its prefix in the checkpoint.
    public init(weight: Parameter, bias: Tensor?, key: String = "") {
        storedWeight = weight
        self.bias = bias
        self.key = key
    }

    public init(weight: Tensor, bias: Tensor?, key: String = "") {
        self.init(weight: Parameter(weight), bias: bias, key: key)
    }

    /// `(..., D_in)` → `(..., D_out)`. A 16-bit weight is widened inside the matrix multiplication.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch storedWeight.storage {
        case .float32(let weight): return x.linear(weight: weight, bias: bias)
        case .halves(let weight): return x.linear(weight: weight, bias: bias)
        }
    }

    /// The backward of `callAsFunction(x)`: adds dW (in the shape the checkpoint stores) and db
    /// to `gradients` under this layer's keys, and returns dx.
    public func backward(_ dy: Tensor, input x: Tensor, gradients: inout Gradients) -> Tensor {
        let g = linearBackward(dy, input: x, weight: weight)
        gradients.add(g.dWeight.reshaped(storedWeight.storedShape), for: key + "weight")
        if bias != nil { gradients.add(g.dBias, for: key + "bias") }
        return g.dx
    }
}
