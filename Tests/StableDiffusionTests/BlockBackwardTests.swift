import Foundation
import StableDiffusion
import TensorCore
import Testing

/// Weights for a block under test: made up on first request (seeded normal numbers, scaled by
/// 1/√fan-in for matrices, so activations keep their size) and kept by key, so that a test can
/// nudge one number and build the block again from the same weights.
final class TestWeights: @unchecked Sendable {
    private(set) var tensors: [String: Tensor] = [:]
    private var generator = TorchGenerator(seed: 11)

    /// A store that hands out the kept tensors, making up the missing ones.
    var store: WeightStore {
        WeightStore(fabricating: { [self] key, shape in
            if let kept = tensors[key] { return kept }
            let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
            let made = generator.randn(shape) * (1 / Float(fanIn).squareRoot())
            tensors[key] = made
            return made
        })
    }

    /// The same weights with `key`'s element `index` moved by `step`.
    func nudged(_ key: String, _ index: Int, by step: Float) -> TestWeights {
        let copy = TestWeights()
        copy.tensors = tensors
        copy.tensors[key]!.scalars[index] += step
        return copy
    }
}

/// `Σ_i y_i · w_i` in Double: the loss whose gradient a check compares.
func weightedLoss(_ y: Tensor, _ w: Tensor) -> Double {
    zip(y.scalars, w.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}

/// The derivative of `L(step)` at 0 from the five-point central stencil,
/// `L'(0) ≈ (8·(L(h) − L(−h)) − (L(2h) − L(−2h))) / 12h`, whose error shrinks as h⁴: a step large
/// enough that the Float32 forward's rounding hardly shows stays accurate through the sharp
/// curves of small LayerNorms and GroupNorms.
func fivePointDerivative(step h: Float = 1e-2, _ loss: (Float) -> Double) -> Float {
    Float((8 * (loss(h) - loss(-h)) - (loss(2 * h) - loss(-2 * h))) / (12 * Double(h)))
}

/// The numerical gradient of `L = Σ w · f(weights)` for element `index` of parameter `key`.
func numericalParameterGradient(_ weights: TestWeights, _ key: String, _ index: Int, lossWeights w: Tensor,
                                _ f: (TestWeights) -> Tensor) -> Float {
    fivePointDerivative { weightedLoss(f(weights.nudged(key, index, by: $0)), w) }
}

/// The numerical gradient of `L = Σ w · f(x)` for every element of `x`.
func numericalInputGradient(_ x: Tensor, lossWeights w: Tensor, _ f: (Tensor) -> Tensor) -> Tensor {
    Tensor(shape: x.shape, scalars: (0..<x.count).map { j in
        fivePointDerivative { step in
            var nudged = x
            nudged.scalars[j] += step
            return weightedLoss(f(nudged), w)
        }
    })
}

// Tolerance: the loss is summed in Double over a Float32 forward, whose rounding (~1e-7 of
// |L| ≲ 20) the stencil divides by ~1.5·h = 1.5e-2: ~1e-4; its h⁴ term is smaller still. So
// agreement to 2e-3 of max(1, |gradient|) is expected, while a missing term (the shortcut, the
// time path, the SiLU after a norm, a residual) or a wrong index is off by 1e-1 or more.
let blockGradientTolerance: Float = 2e-3

/// Checks a module's backward against finite differences: the gradient of every input (all
/// elements) and of every weight it loaded (four elements each), for `L = Σ dOut · forward(...)`.
///
/// - Parameters:
///   - forward: the module built from `weights`, run on `inputs` (inference path).
///   - backward: the analytic gradients: per input name, and the parameter store.
func checkGradients(_ weights: TestWeights, inputs: [String: Tensor], dOut: Tensor,
                    forward: (TestWeights, [String: Tensor]) -> Tensor,
                    backward: () -> (inputs: [String: Tensor], parameters: Gradients),
                    sourceLocation: SourceLocation = #_sourceLocation) {
    let (inputGradients, gradients) = backward()
    for (name, x) in inputs {
        let numeric = numericalInputGradient(x, lossWeights: dOut) { nudged in
            forward(weights, inputs.merging([name: nudged]) { $1 })
        }
        expectClose(inputGradients[name]!, numeric, "d\(name)", sourceLocation: sourceLocation)
    }
    #expect(gradients.keys == weights.tensors.keys.sorted(), sourceLocation: sourceLocation)
    for (key, tensor) in weights.tensors {
        guard let analytic = gradients[key] else { continue }
        #expect(analytic.shape == tensor.shape, "\(key)", sourceLocation: sourceLocation)
        for index in Set([0, tensor.count / 3, 2 * tensor.count / 3, tensor.count - 1]) {
            let numeric = numericalParameterGradient(weights, key, index, lossWeights: dOut) { forward($0, inputs) }
            #expect(abs(analytic.scalars[index] - numeric) <= blockGradientTolerance * max(1, abs(numeric)),
                    "\(key)[\(index)]: \(analytic.scalars[index]) vs \(numeric)", sourceLocation: sourceLocation)
        }
    }
}

@Suite("Training: the UNet's blocks, backward against finite differences")
struct BlockBackwardTests {
    var generator = TorchGenerator(seed: 3)

    @Test("ResnetBlock2D: a UNet block with a 1x1 shortcut and the time embedding; a VAE block with neither",
          arguments: [(4, 6, 5 as Int?), (4, 4, nil as Int?)])
    mutating func resnetBlock(inChannels: Int, outChannels: Int, timeDim: Int?) {
        let weights = TestWeights()
        func build(_ w: TestWeights) -> ResnetBlock2D {
            try! ResnetBlock2D(Weights(w.store), inChannels: inChannels, outChannels: outChannels,
                               timeEmbeddingDim: timeDim, groups: 2, eps: 1e-5)
        }
        let block = build(weights)
        var inputs = ["x": generator.randn([2, inChannels, 3, 4])]
        if let timeDim { inputs["t_emb"] = generator.randn([2, timeDim]) }
        let dOut = generator.randn([2, outChannels, 3, 4])
        let (out, saved) = block.trainingForward(inputs["x"]!, timeEmbedding: inputs["t_emb"])
        #expect(out == block(inputs["x"]!, timeEmbedding: inputs["t_emb"]))    // the same numbers as inference
        checkGradients(weights, inputs: inputs, dOut: dOut, forward: { w, i in build(w)(i["x"]!, timeEmbedding: i["t_emb"]) },
                       backward: {
            var gradients = Gradients()
            let (dx, dt) = block.backward(dOut, saved: saved, gradients: &gradients)
            return (dt.map { ["x": dx, "t_emb": $0] } ?? ["x": dx], gradients)
        })
    }

    @Test("Attention: self-attention (keys from the pixels) and cross-attention (keys from the text)", arguments: [false, true])
    mutating func attention(cross: Bool) {
        let weights = TestWeights()
        func build(_ w: TestWeights) -> Attention {
            try! Attention(Weights(w.store)["attn"], queryDim: 4, contextDim: cross ? 3 : nil, heads: 2, headDim: 3)
        }
        var inputs = ["x": generator.randn([2, 5, 4])]
        if cross { inputs["context"] = generator.randn([2, 7, 3]) }
        let dOut = generator.randn([2, 5, 4])
        let (out, saved) = build(weights).trainingForward(inputs["x"]!, context: inputs["context"])
        #expect(out == build(weights)(inputs["x"]!, context: inputs["context"]))
        checkGradients(weights, inputs: inputs, dOut: dOut, forward: { w, i in build(w)(i["x"]!, context: i["context"]) },
                       backward: {
            var gradients = Gradients()
            let (dx, dContext) = build(weights).backward(dOut, saved: saved, gradients: &gradients)
            return (dContext.map { ["x": dx, "context": $0] } ?? ["x": dx], gradients)
        })
    }

    @Test("FeedForward: GEGLU between two linear layers")
    mutating func feedForward() {
        let weights = TestWeights()
        func build(_ w: TestWeights) -> FeedForward { try! FeedForward(Weights(w.store)["ff"], channels: 4) }
        let inputs = ["x": generator.randn([2, 3, 4])], dOut = generator.randn([2, 3, 4])
        let (out, saved) = build(weights).trainingForward(inputs["x"]!)
        #expect(out.maxAbsDifference(build(weights)(inputs["x"]!)) == 0)
        checkGradients(weights, inputs: inputs, dOut: dOut, forward: { w, i in build(w)(i["x"]!) }, backward: {
            var gradients = Gradients()
            return (["x": build(weights).backward(dOut, saved: saved, gradients: &gradients)], gradients)
        })
    }

    @Test("Transformer2DModel: GroupNorm, proj_in, a transformer block (self-, cross-attention, feed-forward), proj_out")
    mutating func transformer() {
        let weights = TestWeights()
        func build(_ w: TestWeights) -> Transformer2DModel {
            try! Transformer2DModel(Weights(w.store)["attentions.0"], channels: 4, heads: 2, contextDim: 3, layers: 1,
                                    groups: 2, useLinearProjection: false)
        }
        let inputs = ["x": generator.randn([2, 4, 2, 3]), "context": generator.randn([2, 5, 3])]
        let dOut = generator.randn([2, 4, 2, 3])
        let (out, saved) = build(weights).trainingForward(inputs["x"]!, context: inputs["context"]!)
        #expect(out.maxAbsDifference(build(weights)(inputs["x"]!, context: inputs["context"]!)) < 1e-6)
        checkGradients(weights, inputs: inputs, dOut: dOut, forward: { w, i in build(w)(i["x"]!, context: i["context"]!) },
                       backward: {
            var gradients = Gradients()
            let (dx, dContext) = build(weights).backward(dOut, saved: saved, gradients: &gradients)
            return (["x": dx, "context": dContext], gradients)
        })
    }
}

/// Elementwise agreement to `blockGradientTolerance` of max(1, |numeric|), on a gradient that is not flat.
func expectClose(_ analytic: Tensor, _ numeric: Tensor, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let worst = zip(analytic.scalars, numeric.scalars).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
    #expect(analytic.shape == numeric.shape && worst <= blockGradientTolerance, "\(what): worst \(worst)", sourceLocation: sourceLocation)
    #expect(numeric.scalars.contains { abs($0) > 1e-2 }, "\(what) is flat", sourceLocation: sourceLocation)
}

@Suite("Training: the whole UNet's backward against finite differences")
struct UNetBackwardTests {
    /// A UNet with every kind of block SD 1.x has (attention and plain, down and up, the mid
    /// block), 4 and 8 channels wide, on a 5x4 latent whose halving rounds up (so the up half
    /// must stretch 3x2 back to 5x4, not 6x4).
    static let configuration = UNetConfiguration(
        blockOutChannels: [4, 8], layersPerBlock: 1, attentionHeadDim: .all(2), crossAttentionDim: 3, normNumGroups: 2,
        downBlockTypes: ["CrossAttnDownBlock2D", "DownBlock2D"], upBlockTypes: ["UpBlock2D", "CrossAttnUpBlock2D"],
        sampleSize: 4)

    @Test("gradients of the sample, the text context and every weight of the UNet")
    func unet() throws {
        let weights = TestWeights()
        func build(_ w: TestWeights) -> UNet2DConditionModel {
            try! UNet2DConditionModel(Weights(w.store), configuration: Self.configuration)
        }
        var generator = TorchGenerator(seed: 5)
        let inputs = ["sample": generator.randn([2, 4, 5, 4]), "context": generator.randn([2, 3, 3])]
        let dOut = generator.randn([2, 4, 5, 4])
        let unet = build(weights)
        let (out, saved) = unet.trainingForward(inputs["sample"]!, timesteps: [321, 321], encoderHiddenStates: inputs["context"]!)
        #expect(out.maxAbsDifference(unet(inputs["sample"]!, timestep: 321, encoderHiddenStates: inputs["context"]!)) < 1e-6)
        checkGradients(weights, inputs: inputs, dOut: dOut,
                       forward: { w, i in build(w)(i["sample"]!, timestep: 321, encoderHiddenStates: i["context"]!) },
                       backward: {
            var gradients = Gradients()
            let (dSample, dContext) = unet.backward(dOut, saved: saved, gradients: &gradients)
            return (["sample": dSample, "context": dContext], gradients)
        })
    }
}


@Suite("Training: the CLIP text encoder's backward against finite differences")
struct TextEncoderBackwardTests {
    @Test("every weight of a 2-layer text encoder, with quick GELU and with GELU", arguments: [
        CLIPTextConfiguration.Activation.quickGELU, .gelu])
    func textEncoder(activation: CLIPTextConfiguration.Activation) throws {
        let configuration = CLIPTextConfiguration(hiddenSize: 4, intermediateSize: 8, numAttentionHeads: 2, numHiddenLayers: 2,
                                                  maxPositionEmbeddings: 6, vocabSize: 20, hiddenAct: activation)
        let weights = TestWeights()
        func build(_ w: TestWeights) -> CLIPTextModel { try! CLIPTextModel(Weights(w.store), configuration: configuration) }
        // Ids that hit the rows the check samples (0, 6, 13, 19), some of them twice.
        let ids = [[0, 6, 13, 3, 0], [19, 2, 6, 6, 1]]
        var generator = TorchGenerator(seed: 9)
        let dOut = generator.randn([2, 5, 4])
        let model = build(weights)
        let (out, saved) = model.trainingForward(ids)
        #expect(out == model(ids))
        checkGradients(weights, inputs: [:], dOut: dOut, forward: { w, _ in build(w)(ids) }, backward: {
            var gradients = Gradients()
            model.backward(dOut, saved: saved, gradients: &gradients)
            return ([:], gradients)
        })
    }
}

@Suite("Training: the autoencoder's backward against finite differences")
struct AutoencoderBackwardTests {
    @Test("every weight of a 2-level AutoencoderKL, through the encoder, the sampled latent and the decoder")
    func autoencoder() throws {
        let configuration = VAEConfiguration(latentChannels: 2, blockOutChannels: [4, 8], layersPerBlock: 1, normNumGroups: 2)
        let weights = TestWeights()
        func build(_ w: TestWeights) -> AutoencoderKL { try! AutoencoderKL(Weights(w.store), configuration: configuration) }
        var generator = TorchGenerator(seed: 13)
        let image = generator.randn([1, 3, 8, 8]), noise = generator.randn([1, 2, 4, 4])
        // One loss over the three outputs training uses: the reconstruction, and μ and log σ²
        // (which the KL term reads), each with weights of its own.
        let dReconstruction = generator.randn([1, 3, 8, 8]), dMean = generator.randn([1, 2, 4, 4])
        let dLogvar = generator.randn([1, 2, 4, 4])
        func outputs(_ vae: AutoencoderKL) -> Tensor {
            let (reconstruction, posterior, _) = try! vae.trainingForward(image, noise: noise)
            return Tensor(shape: [reconstruction.count + 2 * posterior.mean.count],
                          scalars: reconstruction.scalars + posterior.mean.scalars + posterior.logvar.scalars)
        }
        let lossWeights = Tensor(shape: [dReconstruction.count + 2 * dMean.count],
                                 scalars: dReconstruction.scalars + dMean.scalars + dLogvar.scalars)
        let vae = build(weights)
        let (reconstruction, _, saved) = try vae.trainingForward(image, noise: noise)
        // Without noise the training forward decodes μ, as decode(encode(image).mean) does.
        let (noiseless, posterior, _) = try vae.trainingForward(image, noise: Tensor.zeros(noise.shape))
        #expect(noiseless.maxAbsDifference(try vae.decode(posterior.mean)) < 1e-6)
        #expect(reconstruction.maxAbsDifference(noiseless) > 1e-3)
        checkGradients(weights, inputs: [:], dOut: lossWeights, forward: { w, _ in outputs(build(w)) }, backward: {
            var gradients = Gradients()
            vae.backward(dReconstruction, dMean: dMean, dLogvar: dLogvar, saved: saved, gradients: &gradients)
            return ([:], gradients)
        })
    }
}
