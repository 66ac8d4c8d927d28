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

/// Central differences of `L = Σ w · f(weights)` for element `index` of parameter `key`.
func numericalParameterGradient(_ weights: TestWeights, _ key: String, _ index: Int, lossWeights w: Tensor,
                                step h: Float = 3e-3, _ f: (TestWeights) -> Tensor) -> Float {
    let plus = weights.nudged(key, index, by: h), minus = weights.nudged(key, index, by: -h)
    let taken = Double(plus.tensors[key]!.scalars[index]) - Double(minus.tensors[key]!.scalars[index])
    func loss(_ y: Tensor) -> Double { zip(y.scalars, w.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
    return Float((loss(f(plus)) - loss(f(minus))) / taken)
}

/// Central differences of `L = Σ w · f(x)` for every element of `x`.
func numericalInputGradient(_ x: Tensor, lossWeights w: Tensor, step h: Float = 3e-3, _ f: (Tensor) -> Tensor) -> Tensor {
    func loss(_ y: Tensor) -> Double { zip(y.scalars, w.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
    return Tensor(shape: x.shape, scalars: (0..<x.count).map { j in
        var plus = x, minus = x
        plus.scalars[j] += h
        minus.scalars[j] -= h
        return Float((loss(f(plus)) - loss(f(minus))) / (Double(plus.scalars[j]) - Double(minus.scalars[j])))
    })
}

// Tolerance, as in TensorCore's GradientCheckTests: the loss is summed in Double over a Float32
// forward, whose rounding (~1e-7 of |L| ≲ 20) divided by the 6e-3 step gives ~3e-4; so agreement
// to 2e-3 of max(1, |gradient|). A missing term (the shortcut, the time path, the SiLU after a
// norm) or a wrong index is off by 1e-1 or more.
let blockGradientTolerance: Float = 2e-3

@Suite("Training: a ResNet block's backward against finite differences")
struct ResnetBlockBackwardTests {
    static func block(_ weights: TestWeights, inChannels: Int, outChannels: Int, timeDim: Int?) -> ResnetBlock2D {
        try! ResnetBlock2D(Weights(weights.store), inChannels: inChannels, outChannels: outChannels,
                           timeEmbeddingDim: timeDim, groups: 2, eps: 1e-5)
    }

    @Test("UNet block with a 1x1 shortcut and the time embedding; VAE block with neither",
          arguments: [(4, 6, 5 as Int?), (4, 4, nil as Int?)])
    func gradients(inChannels: Int, outChannels: Int, timeDim: Int?) {
        let weights = TestWeights()
        let block = Self.block(weights, inChannels: inChannels, outChannels: outChannels, timeDim: timeDim)
        var generator = TorchGenerator(seed: 3)
        let x = generator.randn([2, inChannels, 3, 4])
        let t = timeDim.map { generator.randn([2, $0]) }
        let dOut = generator.randn([2, outChannels, 3, 4])

        let (out, saved) = block.trainingForward(x, timeEmbedding: t)
        #expect(out == block(x, timeEmbedding: t))          // the training forward computes the same numbers
        var gradients = Gradients()
        let (dx, dt) = block.backward(dOut, saved: saved, gradients: &gradients)

        func run(_ w: TestWeights, _ x: Tensor, _ t: Tensor?) -> Tensor {
            Self.block(w, inChannels: inChannels, outChannels: outChannels, timeDim: timeDim)(x, timeEmbedding: t)
        }
        expectClose(dx, numericalInputGradient(x, lossWeights: dOut) { run(weights, $0, t) }, "dx")
        if let t { expectClose(dt!, numericalInputGradient(t, lossWeights: dOut) { run(weights, x, $0) }, "dt_emb") }

        // Every weight the block loaded has a gradient of its shape; spot-check four numbers of each.
        #expect(gradients.keys == weights.tensors.keys.sorted())
        for (key, tensor) in weights.tensors {
            let analytic = gradients[key]!
            #expect(analytic.shape == tensor.shape, "\(key)")
            for index in Set([0, tensor.count / 3, 2 * tensor.count / 3, tensor.count - 1]) {
                let numeric = numericalParameterGradient(weights, key, index, lossWeights: dOut) { run($0, x, t) }
                #expect(abs(analytic.scalars[index] - numeric) <= blockGradientTolerance * max(1, abs(numeric)),
                        "\(key)[\(index)]: \(analytic.scalars[index]) vs \(numeric)")
            }
        }
    }
}

/// Elementwise agreement to `blockGradientTolerance` of max(1, |numeric|), on a gradient that is not flat.
func expectClose(_ analytic: Tensor, _ numeric: Tensor, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let worst = zip(analytic.scalars, numeric.scalars).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
    #expect(analytic.shape == numeric.shape && worst <= blockGradientTolerance, "\(what): worst \(worst)", sourceLocation: sourceLocation)
    #expect(numeric.scalars.contains { abs($0) > 1e-2 }, "\(what) is flat", sourceLocation: sourceLocation)
}
