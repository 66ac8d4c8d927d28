import Foundation
import TensorCore

// The autoencoder's training forward and backward, with the latent sampled by the
// reparameterisation trick (Kingma & Welling, 2014): z = μ + σ·ε with ε drawn outside the
// network, so that the gradient reaches μ and log σ² through a plain product.

extension AutoencoderKL {
    /// What the training forward keeps.
    public struct Saved: Sendable {
        let encoder: VAEEncoder.Saved
        let encoded: Tensor                     // the encoder's output: input of quant_conv
        let posterior: DiagonalGaussian         // μ and the clamped log σ²
        let rawLogvar: Tensor                   // log σ² before the clamp to [−30, 20]
        let noise: Tensor                       // ε of the sample
        let z: Tensor                           // μ + σ·ε: input of post_quant_conv
        let decoder: VAEDecoder.Saved
        let decoderInput: Tensor                // post_quant_conv's output
    }

    /// Encodes `image`, samples `z = μ + σ·noise`, decodes it. Returns the reconstruction, the
    /// posterior (for the KL term) and what `backward` needs. Its convolutions are computed
    /// directly (not by Winograd's algorithm), as in `UNet2DConditionModel.trainingForward`.
    public func trainingForward(_ image: Tensor, noise: Tensor) throws
        -> (reconstruction: Tensor, posterior: DiagonalGaussian, saved: Saved) {
        try Winograd.withoutIt { try directTrainingForward(image, noise: noise) }
    }

    private func directTrainingForward(_ image: Tensor, noise: Tensor) throws
        -> (reconstruction: Tensor, posterior: DiagonalGaussian, saved: Saved) {
        try checkImage(image)
        let (encoded, encoderSaved) = encoder.trainingForward(image)
        let moments = quantConv(encoded)
        let posterior = try DiagonalGaussian(moments: moments)
        let rawLogvar = moments.splitChannels(at: moments.shape[1] / 2).1
        guard noise.shape == posterior.mean.shape else {
            throw VAEError.wrongInputShape(what: "the noise", expected: "\(posterior.mean.shape)", found: noise.shape)
        }
        let z = posterior.mean + posterior.standardDeviation * noise
        let decoderInput = postQuantConv(z)
        let (reconstruction, decoderSaved) = decoder.trainingForward(decoderInput)
        return (reconstruction, posterior, Saved(encoder: encoderSaved, encoded: encoded, posterior: posterior,
                                                 rawLogvar: rawLogvar, noise: noise, z: z, decoder: decoderSaved,
                                                 decoderInput: decoderInput))
    }

    /// The backward of `trainingForward`, from the gradient of the reconstruction and the
    /// gradients of μ and log σ² that a KL term adds. Through the sample:
    ///
    ///     dμ      += dz
    ///     dlogσ²  += dz · ε · σ / 2        (σ = e^(logσ²/2), so dσ/dlogσ² = σ/2; zero where clamped)
    public func backward(_ dReconstruction: Tensor, dMean: Tensor, dLogvar: Tensor, saved: Saved, gradients: inout Gradients) {
        let dDecoderInput = decoder.backward(dReconstruction, saved: saved.decoder, gradients: &gradients)
        let dz = postQuantConv.backward(dDecoderInput, input: saved.z, gradients: &gradients)
        let sigma = saved.posterior.standardDeviation
        let mean = dMean + dz
        var logvar = dLogvar + dz * saved.noise * sigma * 0.5
        logvar = logvar.zipMap(saved.rawLogvar) { gradient, raw in raw < -30 || raw > 20 ? 0 : gradient }
        let dMoments = Tensor.concatenateChannels(mean, logvar)
        let dEncoded = quantConv.backward(dMoments, input: saved.encoded, gradients: &gradients)
        encoder.backward(dEncoded, saved: saved.encoder, gradients: &gradients)
    }
}
