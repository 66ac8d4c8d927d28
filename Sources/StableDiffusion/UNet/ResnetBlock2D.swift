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
