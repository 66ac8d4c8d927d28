import TensorCore

/// Pictures encoded once by the finished VAE, for the diffusion phase: for each, the posterior's
/// mean and standard deviation, from which every step draws a fresh latent, `z = μ + σ·ε`, as
/// SD's training sampled `encode(x).sample()` each time it saw a picture.
struct LatentPool {
    /// `(N, 4, h, w)` each.
    let mean: Tensor
    let standardDeviation: Tensor
    let captions: [String]
    var count: Int { captions.count }

    /// Encodes scenes `0..<count` of `data`, 64 at a time.
    init(vae: AutoencoderKL, data: ShapesDataset, count: Int) throws {
        var means: [Tensor] = [], deviations: [Tensor] = [], captions: [String] = []
        for start in stride(from: 0, to: count, by: 64) {
            let (pixels, batchCaptions) = data.batch(start..<min(count, start + 64))
            let posterior = try vae.encode(pixels)
            means.append(posterior.mean)
            deviations.append(posterior.standardDeviation)
            captions += batchCaptions
        }
        mean = Tensor.concatenate(means, axis: 0)
        standardDeviation = Tensor.concatenate(deviations, axis: 0)
        self.captions = captions
    }

    /// One latent drawn from each listed picture's posterior, `(indices.count, 4, h, w)`.
    func sample(_ indices: [Int], generator: inout TorchGenerator) -> Tensor {
        let mu = Tensor.concatenate(indices.map { mean.slice($0..<$0 + 1) }, axis: 0)
        let sigma = Tensor.concatenate(indices.map { standardDeviation.slice($0..<$0 + 1) }, axis: 0)
        return mu + sigma * generator.randn(mu.shape)
    }

    /// The standard deviation of one latent drawn from every picture: SD set its scaling factor
    /// to one over this number (0.18215 for its VAE), so the UNet sees latents of spread 1, the
    /// spread of the noise it is trained to remove. Like `torch.std`, which SD used, it divides by
    /// n − 1 (`Tensor.standardDeviation` divides by n).
    func sampleStandardDeviation(seed: UInt64) -> Float {
        var generator = TorchGenerator(seed: seed)
        let z = sample(Array(0..<count), generator: &generator).scalars
        let average = z.reduce(0.0) { $0 + Double($1) } / Double(z.count)
        let variance = z.reduce(0.0) { $0 + (Double($1) - average) * (Double($1) - average) } / Double(z.count - 1)
        return Float(variance.squareRoot())
    }
}
