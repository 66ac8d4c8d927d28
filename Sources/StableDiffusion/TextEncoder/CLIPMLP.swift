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

// MARK: - Training

extension CLIPMLP {
    /// What the training forward keeps: the inputs of fc1, of the activation and of fc2.
    public struct Saved: Sendable {
        let x, hidden, activated: Tensor
    }

    /// `callAsFunction(x)`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor) -> (output: Tensor, saved: Saved) {
        let hidden = fc1(x)
        let activated: Tensor
        switch activation {
        case .quickGELU: activated = hidden.quickGELU()
        case .gelu: activated = hidden.gelu()
        }
        return (fc2(activated), Saved(x: x, hidden: hidden, activated: activated))
    }

    /// The backward of `trainingForward`: fc2, the activation, fc1.
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) -> Tensor {
        let dActivated = fc2.backward(dOut, input: saved.activated, gradients: &gradients)
        let dHidden: Tensor
        switch activation {
        case .quickGELU: dHidden = saved.hidden.quickGELUBackward(dActivated)
        case .gelu: dHidden = saved.hidden.geluBackward(dActivated)
        }
        return fc1.backward(dHidden, input: saved.x, gradients: &gradients)
    }
}
