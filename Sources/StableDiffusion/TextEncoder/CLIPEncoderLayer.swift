import TensorCore

/// One layer of CLIP's text transformer, "pre-LN" (Radford et al., 2019, as in GPT-2): each half
/// normalises its input and adds its result back onto the residual stream,
///
///     x = x + self_attn(layer_norm1(x))      tokens exchange information (causal)
///     x = x + mlp(layer_norm2(x))            each token is transformed on its own
public struct CLIPEncoderLayer: Sendable {
    public let layerNorm1: LayerNorm     // (D) weight and bias; named layer_norm1
    public let selfAttn: CLIPAttention   // named self_attn
    public let layerNorm2: LayerNorm     // (D); named layer_norm2
    public let mlp: CLIPMLP

    public init(_ weights: Weights, configuration c: CLIPTextConfiguration) throws {
        layerNorm1 = try LayerNorm(weights["layer_norm1"], features: c.hiddenSize, eps: c.layerNormEps)
        selfAttn = try CLIPAttention(weights["self_attn"], configuration: c)
        layerNorm2 = try LayerNorm(weights["layer_norm2"], features: c.hiddenSize, eps: c.layerNormEps)
        mlp = try CLIPMLP(weights["mlp"], configuration: c)
    }

    /// `(N, T, D)` → `(N, T, D)`; `mask` `(T, T)` is the causal mask.
    public func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        let h = x + selfAttn(layerNorm1(x), mask: mask)
        return h + mlp(layerNorm2(h))
    }
}

// MARK: - Training

extension CLIPEncoderLayer {
    /// What the training forward keeps.
    public struct Saved: Sendable {
        let x, h: Tensor                         // the stream before each residual branch
        let attention: CLIPAttention.Saved, mlp: CLIPMLP.Saved
        let normalised1, normalised2: Tensor
    }

    /// `callAsFunction(x, mask:)`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor, mask: Tensor?) -> (output: Tensor, saved: Saved) {
        let normalised1 = layerNorm1(x)
        let (a, sa) = selfAttn.trainingForward(normalised1, mask: mask)
        let h = x + a
        let normalised2 = layerNorm2(h)
        let (m, sm) = mlp.trainingForward(normalised2)
        return (h + m, Saved(x: x, h: h, attention: sa, mlp: sm, normalised1: normalised1, normalised2: normalised2))
    }

    /// The backward of `trainingForward`: each residual passes the gradient on and adds its branch's.
    public func backward(_ dOut: Tensor, saved: Saved, mask: Tensor?, gradients: inout Gradients) -> Tensor {
        var dh = dOut
        dh += layerNorm2.backward(mlp.backward(dOut, saved: saved.mlp, gradients: &gradients), input: saved.h,
                                  gradients: &gradients)
        var dx = dh
        dx += layerNorm1.backward(selfAttn.backward(dh, saved: saved.attention, mask: mask, gradients: &gradients),
                                  input: saved.x, gradients: &gradients)
        return dx
    }
}
