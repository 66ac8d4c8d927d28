import TensorCore

/// Stable Diffusion's variational autoencoder: it turns images into latents 8 times smaller on
/// each side and back (diffusers' `AutoencoderKL`; "KL" for the Kullback-Leibler term that kept its
/// latent space close to a Gaussian in training).
///
/// The diffusion model never sees pixels. A 512x512x3 image (786,432 numbers) is encoded to a
/// 64x64x4 latent (16,384 numbers, 48 times fewer); denoising happens there, and the decoder paints
/// the final latent back into pixels:
///
///     image (N, 3, H, W) ─ encoder ─ quant_conv ─→ mean, logvar (N, 4, H/8, W/8)
///     latent (N, 4, h, w) ─ post_quant_conv ─ decoder ─→ image (N, 3, 8h, 8w)
///
/// Latents are multiplied by `scalingFactor` (0.18215) before the diffusion model sees them, which
/// brings their spread to about 1, the spread of the noise the model was trained to remove; they
/// are divided by it again before decoding.
///
/// Checkpoint keys (diffusers layout, scoped at the VAE): `encoder.*`, `quant_conv`,
/// `post_quant_conv`, `decoder.*`.
///
/// ```swift
/// let vae = try AutoencoderKL(weights, configuration: .sd15)
/// let latents = try vae.encode(image).mean * vae.scalingFactor       // (1, 4, 64, 64)
/// let picture = try vae.decode(scaledLatents: latents)                // (1, 3, 512, 512)
/// ```
public struct AutoencoderKL: Sendable {
    public let configuration: VAEConfiguration
    public let encoder: VAEEncoder
    public let quantConv: Conv2d        // (2·latent, 2·latent, 1, 1); named quant_conv
    public let postQuantConv: Conv2d    // (latent, latent, 1, 1); named post_quant_conv
    public let decoder: VAEDecoder

    /// Builds the VAE from a weights view scoped at its root (`encoder.conv_in.weight`, ...).
    /// Throws `VAEError` for a configuration this project cannot run and `CheckpointError` for a
    /// missing tensor or a wrong shape.
    public init(_ weights: Weights, configuration: VAEConfiguration = .sd15) throws {
        try configuration.validate()
        self.configuration = configuration
        let latent = configuration.latentChannels
        encoder = try VAEEncoder(weights["encoder"], configuration: configuration)
        quantConv = try Conv2d(weights["quant_conv"], inChannels: 2 * latent, outChannels: 2 * latent, kernelSize: 1)
        postQuantConv = try Conv2d(weights["post_quant_conv"], inChannels: latent, outChannels: latent, kernelSize: 1)
        decoder = try VAEDecoder(weights["decoder"], configuration: configuration)
    }

    /// The multiplier between the VAE's latents and the diffusion model's (0.18215 in SD 1.x).
    public var scalingFactor: Float { configuration.scalingFactor }

    /// How many times smaller the latent is than the image on each side (8).
    public var downsamplingFactor: Int { configuration.downsamplingFactor }

    /// Encodes images into the distribution of their latents.
    ///
    /// - Parameter image: `(N, 3, H, W)` with values in [-1, 1] (pixel / 127.5 − 1); `H` and `W`
    ///   multiples of 8.
    /// - Returns: the posterior; its `mean` (or a `sample`) is the *unscaled* latent
    ///   `(N, 4, H/8, W/8)`: multiply by `scalingFactor` before handing it to the diffusion model.
    public func encode(_ image: Tensor) throws -> DiagonalGaussian {
        try checkImage(image)
        // (N, 2·latent, H/8, W/8): mean and log-variance side by side along the channels.
        let moments = quantConv(encoder(image))
        return try DiagonalGaussian(moments: moments)
    }

    /// Throws unless `image` is `(N, C_in, H, W)` with sides that are multiples of the downsampling factor.
    func checkImage(_ image: Tensor) throws {
        let c = configuration, factor = downsamplingFactor
        guard image.rank == 4, image.shape[1] == c.inChannels, image.shape[0] > 0 else {
            throw VAEError.wrongInputShape(what: "the image", expected: "(N, \(c.inChannels), H, W)", found: image.shape)
        }
        let (height, width) = (image.shape[2], image.shape[3])
        guard height > 0, width > 0, height % factor == 0, width % factor == 0 else {
            throw VAEError.sizeNotDivisible(height: height, width: width, factor: factor)
        }
    }

    /// Decodes *unscaled* latents (the encoder's scale) into images.
    ///
    /// - Parameter latents: `(N, 4, h, w)`. Latents from the diffusion model must be divided by
    ///   `scalingFactor` first, or passed to `decode(scaledLatents:)`, which does that.
    /// - Returns: `(N, 3, 8h, 8w)`, roughly in [-1, 1] but not clamped; a picture's pixel is
    ///   `clamp((x + 1) / 2, 0, 1) · 255`.
    public func decode(_ latents: Tensor) throws -> Tensor {
        try checkLatents(latents)
        return decoder(postQuantConv(latents))
    }

    /// Decodes latents at the diffusion model's scale: `decode(latents / scalingFactor)`.
    public func decode(scaledLatents: Tensor) throws -> Tensor {
        let scale = scalingFactor
        return try decode(scaledLatents.map { $0 / scale })
    }

    /// Throws unless `latents` is `(N, latent, h, w)` with nothing empty.
    func checkLatents(_ latents: Tensor) throws {
        let c = configuration
        guard latents.rank == 4, latents.shape[1] == c.latentChannels, latents.shape.allSatisfy({ $0 > 0 }) else {
            throw VAEError.wrongInputShape(what: "the latents", expected: "(N, \(c.latentChannels), h, w)",
                                           found: latents.shape)
        }
    }
}
