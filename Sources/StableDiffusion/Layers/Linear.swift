import TensorCore

/// A fully connected layer, `y = x Wᵀ + b` (PyTorch's `nn.Linear`).
public struct Linear: Sendable {
    public let weight: Tensor   // (D_out, D_in)
    public let bias: Tensor?    // (D_out)

    public init(_ weights: Weights, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        weight = try weights.tensor("weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? try weights.tensor("bias", shape: [outFeatures]) : nil
    }

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    /// `(..., D_in)` → `(..., D_out)`
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.linear(weight: weight, bias: bias)
    }
}
