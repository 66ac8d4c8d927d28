import TensorCore

/// A fully connected layer, `y = x Wᵀ + b` (PyTorch's `nn.Linear`).
public struct Linear: Sendable {
    public let storedWeight: Parameter  // (D_out, D_in), as the checkpoint stores it
    public let bias: Tensor?            // (D_out)

    /// The weight as Float32 `(D_out, D_in)`.
    public var weight: Tensor { storedWeight.value }

    public init(_ weights: Weights, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        storedWeight = try weights.parameter("weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? try weights.tensor("bias", shape: [outFeatures]) : nil
    }

    public init(weight: Parameter, bias: Tensor?) {
        storedWeight = weight
        self.bias = bias
    }

    public init(weight: Tensor, bias: Tensor?) {
        self.init(weight: Parameter(weight), bias: bias)
    }

    /// `(..., D_in)` → `(..., D_out)`. A 16-bit weight is widened inside the matrix multiplication.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch storedWeight.storage {
        case .float32(let weight): return x.linear(weight: weight, bias: bias)
        case .halves(let weight): return x.linear(weight: weight, bias: bias)
        }
    }
}
