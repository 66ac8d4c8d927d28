import TensorCore

/// The residual block of the UNet and of the VAE (He et al., 2016, with GroupNorm and SiLU):
///
///     h = conv1(silu(norm1(x)))
///     h = h + time_emb_proj(silu(t_emb))      (UNet only: the timestep steers every block)
///     h = conv2(silu(norm2(h)))               (dropout sits before conv2 in training; inference skips it)
///     out = shortcut(x) + h                   (shortcut is a 1x1 conv when the channel count changes)
public struct ResnetBlock2D: Sendable {
    public let norm1: GroupNorm
    public let conv1: Conv2d            // (C_out, C_in, 3, 3)
    public let timeEmbProj: Linear?     // (C_out, D_time); named time_emb_proj in the checkpoint
    public let norm2: GroupNorm
    public let conv2: Conv2d            // (C_out, C_out, 3, 3)
    public let convShortcut: Conv2d?    // (C_out, C_in, 1, 1); named conv_shortcut

    /// - Parameters:
    ///   - timeEmbeddingDim: width of the time embedding (1280 in SD 1.x), or nil in the VAE.
    ///   - eps: GroupNorm epsilon: 1e-5 in the UNet, 1e-6 in the VAE.
    public init(_ weights: Weights, inChannels: Int, outChannels: Int, timeEmbeddingDim: Int?,
                groups: Int = 32, eps: Float) throws {
        norm1 = try GroupNorm(weights["norm1"], groups: groups, channels: inChannels, eps: eps)
        conv1 = try Conv2d(weights["conv1"], inChannels: inChannels, outChannels: outChannels, kernelSize: 3, padding: 1)
        timeEmbProj = try timeEmbeddingDim.map {
            try Linear(weights["time_emb_proj"], inFeatures: $0, outFeatures: outChannels)
        }
        norm2 = try GroupNorm(weights["norm2"], groups: groups, channels: outChannels, eps: eps)
        conv2 = try Conv2d(weights["conv2"], inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1)
        convShortcut = inChannels == outChannels ? nil
            : try Conv2d(weights["conv_shortcut"], inChannels: inChannels, outChannels: outChannels, kernelSize: 1)
    }

    /// - Parameters:
    ///   - x: `(N, C_in, H, W)`.
    ///   - timeEmbedding: `(N, D_time)`, required in the UNet.
    /// - Returns: `(N, C_out, H, W)`.
    public func callAsFunction(_ x: Tensor, timeEmbedding: Tensor? = nil) -> Tensor {
        var h = conv1(norm1(x, silu: true))
        if let timeEmbProj, let timeEmbedding {
            // (N, D_time) → (N, C_out), added to every pixel of its channel.
            let shift = timeEmbProj(timeEmbedding.silu())
            h = h.addingChannelwise(shift)
        }
        h = conv2(norm2(h, silu: true))
        h += convShortcut?(x) ?? x
        return h
    }
}

// MARK: - Training

extension ResnetBlock2D {
    /// What the training forward keeps for the backward: the input of every layer whose gradient
    /// needs it. Inference keeps none of this.
    public struct Saved: Sendable {
        let x: Tensor                  // (N, C_in, H, W): input of norm1 and of the shortcut
        let h0: Tensor                 // silu(norm1(x)): input of conv1
        let h2: Tensor                 // conv1's output plus the time shift: input of norm2
        let h3: Tensor                 // silu(norm2(h2)): input of conv2
        let timeEmbedding: Tensor?     // (N, D_time): input of the SiLU before time_emb_proj
        let timeActivation: Tensor?    // silu(timeEmbedding): input of time_emb_proj
    }

    /// `callAsFunction`, step by step, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor, timeEmbedding: Tensor? = nil) -> (output: Tensor, saved: Saved) {
        let h0 = norm1(x, silu: true)
        var h2 = conv1(h0)
        var timeActivation: Tensor?
        if let timeEmbProj, let timeEmbedding {
            timeActivation = timeEmbedding.silu()
            h2 = h2.addingChannelwise(timeEmbProj(timeActivation!))
        }
        let h3 = norm2(h2, silu: true)
        var out = conv2(h3)
        out += convShortcut?(x) ?? x
        return (out, Saved(x: x, h0: h0, h2: h2, h3: h3, timeEmbedding: timeActivation == nil ? nil : timeEmbedding,
                           timeActivation: timeActivation))
    }

    /// The backward of `trainingForward`, the forward's steps in reverse. Adds the gradient of
    /// every weight of the block to `gradients`; returns the gradients of the input and of the
    /// time embedding (nil in the VAE).
    ///
    ///     out = conv2(silu(norm2(h2))) + shortcut(x)      → dh2, and dx from the shortcut
    ///     h2  = conv1(h0) + time_emb_proj(silu(t_emb))    → dh0 = conv1ᵀ(dh2), dt_emb from Σ over pixels
    ///     h0  = silu(norm1(x))                            → dx += norm1ᵀ(dh0)
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) -> (dx: Tensor, dTimeEmbedding: Tensor?) {
        let dShortcut = convShortcut?.backward(dOut, input: saved.x, gradients: &gradients) ?? dOut
        let dh3 = conv2.backward(dOut, input: saved.h3, gradients: &gradients)
        let dh2 = norm2.backward(dh3, input: saved.h2, silu: true, gradients: &gradients)
        var dTimeEmbedding: Tensor?
        if let timeEmbProj, let timeEmbedding = saved.timeEmbedding, let activation = saved.timeActivation {
            let dShift = addChannelwiseBackward(dh2, valuesShape: [dh2.shape[0], dh2.shape[1]])   // (N, C_out)
            let dActivation = timeEmbProj.backward(dShift, input: activation, gradients: &gradients)
            dTimeEmbedding = timeEmbedding.siluBackward(dActivation)
        }
        let dh0 = conv1.backward(dh2, input: saved.h0, gradients: &gradients)
        var dx = norm1.backward(dh0, input: saved.x, silu: true, gradients: &gradients)
        dx += dShortcut
        return (dx, dTimeEmbedding)
    }
}

extension Array where Element == ResnetBlock2D {
    /// A run of ResNet blocks without a time embedding (the VAE's levels), one after another,
    /// keeping what each one's backward needs.
    func trainingForward(_ x: Tensor) -> (output: Tensor, saved: [ResnetBlock2D.Saved]) {
        var h = x, saved: [ResnetBlock2D.Saved] = []
        for resnet in self {
            let (out, s) = resnet.trainingForward(h)
            saved.append(s)
            h = out
        }
        return (h, saved)
    }

    /// The backward of `trainingForward(_:)`, last block first: the gradient of the run's input.
    func backward(_ dOut: Tensor, saved: [ResnetBlock2D.Saved], gradients: inout Gradients) -> Tensor {
        var d = dOut
        for (resnet, s) in zip(self, saved).reversed() { d = resnet.backward(d, saved: s, gradients: &gradients).dx }
        return d
    }
}
