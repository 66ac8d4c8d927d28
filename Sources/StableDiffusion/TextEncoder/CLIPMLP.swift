import TensorCore

/// The feed-forward half of a CLIP text layer, applied to each token on its own:
///
///     mlp(x) = fc2(act(fc1(x)))        D → 4·D → D
///
/// with act = quick GELU, `x · σ(1.702 x)`, in OpenAI's CLIP (or the exact GELU, per configuration).
public struct CLIPMLP: Sendable {
    public let fc1: Linear   // (I, D)
    public let fc2: Linear   // (D, I)
    public let activation: CLIPTextConfiguration.Activation

    public init(_ weights: Weights, configuration c: CLIPTextConfiguration) throws {
        fc1 = try Linear(weights["fc1"], inFeatures: c.hiddenSize, outFeatures: c.intermediateSize)
        fc2 = try Linear(weights["fc2"], inFeatures: c.intermediateSize, outFeatures: c.hiddenSize)
        activation = c.hiddenAct
    }

    /// `(N, T, D)` → `(N, T, D)`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = fc1(x)   // (N, T, I)
        switch activation {
        case .quickGELU: return fc2(h.quickGELU())
        case .gelu: return fc2(h.gelu())
        }
    }
}
