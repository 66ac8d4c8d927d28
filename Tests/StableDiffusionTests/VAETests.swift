import Foundation
import StableDiffusion
import TensorCore
import Testing

// Tolerances. The tiny VAE computes the same function as diffusers' on the same weights, in
// float32, with sums taken in a different order (blocked GEMM vs. PyTorch's kernels, Double
// GroupNorm statistics vs. float). Encoding runs through 27 convolutions, 22 GroupNorms and one
// attention; decoding through 35 convolutions, 30 GroupNorms and one attention. Each step adds
// rounding of about 1e-7 relative to values of size 1-5, and GroupNorm divides by the spread of
// its input, which can amplify what came before. Measured errors are 1e-6 to 6e-6 (the tests
// print them); 1e-4 leaves a margin of about 20x, while a wrong layer, key or padding gives
// errors of 0.1 or more.

@Suite("VAE: tiny AutoencoderKL against diffusers")
struct VAEReferenceTests {
    @Test("encode: mean and log-variance match diffusers' latent_dist")
    func encodeMatchesReference() throws {
        let vae = try VAEFixture.vae()
        let reference = try VAEFixture.reference("vae.safetensors")
        let posterior = try vae.encode(reference["vae.image"]!)              // (1, 3, 32, 32)
        let meanError = posterior.mean.maxAbsDifference(reference["vae.latent_mean"]!)
        let logvarError = posterior.logvar.maxAbsDifference(reference["vae.latent_logvar"]!)
        print("VAE encode: max |Δmean| = \(meanError), max |Δlogvar| = \(logvarError)")
        #expect(posterior.mean.shape == [1, 4, 4, 4])
        #expect(meanError < 1e-4)
        #expect(logvarError < 1e-4)
    }

    @Test("encoder stages: the mid block's output matches diffusers'")
    func encoderMidBlockMatchesReference() throws {
        let vae = try VAEFixture.vae()
        let reference = try VAEFixture.reference("vae.safetensors")
        var h = vae.encoder.convIn(reference["vae.image"]!)
        for block in vae.encoder.downBlocks { h = block(h) }
        h = vae.encoder.midBlock(h)                                        // (1, 16, 4, 4)
        let error = h.maxAbsDifference(reference["vae.encoder.mid_block"]!)
        print("VAE encoder.mid_block: max |Δ| = \(error)")
        #expect(error < 1e-4)
    }

    @Test("decode: the image matches diffusers' vae.decode, block by block")
    func decodeMatchesReference() throws {
        let vae = try VAEFixture.vae()
        let reference = try VAEFixture.reference("vae.safetensors")
        let latents = reference["vae.latents"]!                            // (1, 4, 4, 4), scaled

        // Block by block, to point at the first one that goes wrong.
        var h = vae.decoder.convIn(vae.postQuantConv(latents.map { $0 / 0.18215 }))
        h = vae.decoder.midBlock(h)
        let midError = h.maxAbsDifference(reference["vae.decoder.mid_block"]!)
        h = vae.decoder.upBlocks[0](h)
        let up0Error = h.maxAbsDifference(reference["vae.decoder.up_blocks.0"]!)
        h = vae.decoder.upBlocks[1](h)
        let up1Error = h.maxAbsDifference(reference["vae.decoder.up_blocks.1"]!)

        let decoded = try vae.decode(scaledLatents: latents)
        let error = decoded.maxAbsDifference(reference["vae.decoded"]!)
        print("VAE decode: max |Δ| mid \(midError), up_blocks.0 \(up0Error), up_blocks.1 \(up1Error), image \(error)")
        #expect(decoded.shape == [1, 3, 32, 32])
        #expect(midError < 1e-4 && up0Error < 1e-4 && up1Error < 1e-4)
        #expect(error < 1e-4)
    }

    @Test("decoding the last latents of a txt2img run gives the pipeline's picture")
    func decodeMatchesPipelineOutput() throws {
        // The pipeline's last step: image = clamp(vae.decode(latents / 0.18215) / 2 + 0.5, 0, 1),
        // returned as (N, H, W, 3).
        let vae = try VAEFixture.vae()
        let reference = try VAEFixture.reference("pipelines.safetensors")
        let decoded = try vae.decode(scaledLatents: reference["txt2img.ddim.step3.latents"]!)   // (1, 3, 64, 64)
        let picture = decoded.map { min(max($0 / 2 + 0.5, 0), 1) }.permuted([0, 2, 3, 1])
        let error = picture.maxAbsDifference(reference["txt2img.ddim.image"]!)
        print("VAE decode of txt2img.ddim latents: max |Δ| = \(error)")
        #expect(error < 1e-4)
    }

    @Test("sample(generator:) draws like diffusers' latent_dist.sample in img2img")
    func sampleMatchesImg2ImgReference() throws {
        // The img2img reference run encodes a 64x64 picture and samples its latent with the
        // pipeline's generator (seed 7): mean + std · randn((1, 4, 8, 8)); the generator's next
        // draw is the noise added to the latent.
        let vae = try VAEFixture.vae()
        let reference = try VAEFixture.reference("pipelines.safetensors")
        let picture = reference["img2img.ddim.input_image"]!.map { $0 * 2 - 1 }   // [0, 1] → [-1, 1]
        let posterior = try vae.encode(picture)
        var generator = TorchGenerator(seed: 7)
        let latents = posterior.sample(generator: &generator).map { $0 * 0.18215 }
        let error = latents.maxAbsDifference(reference["img2img.ddim.image_latents"]!)
        let nextDraw = generator.randn([1, 4, 8, 8])
        print("VAE sample: max |Δ| = \(error)")
        #expect(error < 1e-4)
        #expect(nextDraw.maxAbsDifference(reference["img2img.ddim.noise"]!) < 1e-5)
        // The draw really moved away from the mean: std · ε is not zero.
        #expect(latents.maxAbsDifference(posterior.mean.map { $0 * 0.18215 }) > 1e-3)
    }

    @Test("moments split per sample into mean and log-variance, clamped to [-30, 20]")
    func splitsMoments() throws {
        // Two samples, 2 latent channels, 1x2 pixels: sample n, channel c, pixel p holds
        // 4n + c + p/2 − 3, except two log-variances set far outside the clamp range.
        let values: [Float] = (0..<16).map { (i: Int) -> Float in
            let (n, c, p) = (i / 8, i % 8 / 2, i % 2)
            return Float(4 * n + c) + Float(p) / 2 - 3
        }
        var moments = Tensor(shape: [2, 4, 1, 2], scalars: values)
        moments[0, 2, 0, 0] = -45
        moments[1, 3, 0, 1] = 60
        let posterior = try DiagonalGaussian(moments: moments)
        #expect(posterior.mean.shape == [2, 2, 1, 2])
        #expect(posterior.mean.scalars == [-3, -2.5, -2, -1.5, 1, 1.5, 2, 2.5])
        #expect(posterior.logvar.scalars == [-30, -0.5, 0, 0.5, 3, 3.5, 4, 20])
        #expect(abs(posterior.standardDeviation[0, 0, 0, 1] - expf(-0.25)) < 1e-6)   // σ = exp(logvar / 2)
    }

    @Test("attention projections stored as 1x1 convolutions (C, C, 1, 1) give the same VAE")
    func acceptsConvolutionShapedAttentionWeights() throws {
        // Rewrite the fixture with the 8 attention matrices (to_q, to_k, to_v, to_out.0 of both
        // mid blocks) as (C, C, 1, 1) kernels, as older diffusers files store them.
        let records = try SafeTensors.read(
            path: VAEFixture.folder.appendingPathComponent("diffusion_pytorch_model.safetensors").path)
        var tensors = records.mapValues { $0.tensor() }
        var reshaped = 0
        for (key, tensor) in tensors where key.contains(".attentions.0.to_") && key.hasSuffix(".weight") {
            #expect(tensor.shape == [16, 16])
            tensors[key] = tensor.reshaped([16, 16, 1, 1])
            reshaped += 1
        }
        #expect(reshaped == 8)
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("vae-conv-attention-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try VAEFixture.writeSafeTensors(tensors, to: url)

        let store = WeightStore(try SafeTensors.read(path: url.path))
        let convLayout = try AutoencoderKL(Weights(store), configuration: try VAEFixture.configuration())
        try store.checkAllUsed()
        let image = try VAEFixture.reference("vae.safetensors")["vae.image"]!
        let expected = try VAEFixture.vae().encode(image).mean
        #expect(try convLayout.encode(image).mean == expected)   // the very same numbers
    }

    @Test("loading uses every tensor of the checkpoint")
    func loadingUsesEveryTensor() throws {
        let store = try VAEFixture.store()
        _ = try AutoencoderKL(Weights(store), configuration: try VAEFixture.configuration())
        #expect(store.unusedKeys.isEmpty)
        #expect(store.keys.count > 100)
    }

    @Test("a missing tensor or a wrong configuration is reported by name")
    func reportsCheckpointProblems() throws {
        let store = try VAEFixture.store()
        // The SD 1.5 configuration (128 channels first) does not fit the tiny weights (8).
        #expect(throws: CheckpointError.wrongShape(key: "encoder.conv_in.weight", expected: [128, 3, 3, 3],
                                                   found: [8, 3, 3, 3])) {
            try AutoencoderKL(Weights(store), configuration: .sd15)
        }
        // A view scoped at the wrong place finds nothing.
        #expect(throws: CheckpointError.missingKey("first_stage_model.encoder.conv_in.weight")) {
            try AutoencoderKL(Weights(store, prefix: "first_stage_model."), configuration: try VAEFixture.configuration())
        }
    }

    @Test("bad inputs to encode and decode throw VAEError")
    func rejectsBadInputs() throws {
        let vae = try VAEFixture.vae()
        #expect(throws: VAEError.wrongInputShape(what: "the image", expected: "(N, 3, H, W)", found: [1, 4, 32, 32])) {
            try vae.encode(Tensor.zeros([1, 4, 32, 32]))
        }
        #expect(throws: VAEError.wrongInputShape(what: "the image", expected: "(N, 3, H, W)", found: [3, 32, 32])) {
            try vae.encode(Tensor.zeros([3, 32, 32]))
        }
        #expect(throws: VAEError.sizeNotDivisible(height: 30, width: 32, factor: 8)) {
            try vae.encode(Tensor.zeros([1, 3, 30, 32]))
        }
        #expect(throws: VAEError.wrongInputShape(what: "the latents", expected: "(N, 4, h, w)", found: [1, 3, 4, 4])) {
            try vae.decode(Tensor.zeros([1, 3, 4, 4]))
        }
        #expect(throws: VAEError.wrongInputShape(what: "the latents", expected: "(N, 4, h, w)", found: [1, 4, 0, 4])) {
            try vae.decodeTiled(Tensor.zeros([1, 4, 0, 4]))
        }
        #expect(throws: VAEError.wrongInputShape(what: "the moments", expected: "(N, 2·latent, h, w)", found: [1, 7, 4, 4])) {
            try DiagonalGaussian(moments: Tensor.zeros([1, 7, 4, 4]))
        }
        #expect(VAEError.sizeNotDivisible(height: 30, width: 32, factor: 8).description
                == "image size 30x32 is not a multiple of 8 on both sides; resize or crop it to, e.g., 24x32")
    }
}
