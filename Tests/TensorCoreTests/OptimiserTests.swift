import Foundation
import Testing
import TensorCore

/// `adamw.json`: torch.optim.AdamW and clip_grad_norm_ on two small parameters (see Fixtures/README.md).
struct AdamWFixture: Decodable {
    struct Settings: Decodable {
        var lr: Float, betas: [Float], eps: Float, weight_decay: Float, max_norm: Float
    }
    struct Step: Decodable {
        var gradients: [String: [Float]], norm: Float, after: [String: [Float]]
    }
    var settings: Settings
    var initial: [String: [Float]]
    var shapes: [String: [Int]]
    var steps: [Step]

    static func load() throws -> AdamWFixture {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("adamw.json")
        return try JSONDecoder().decode(AdamWFixture.self, from: Data(contentsOf: url))
    }

    func tensors(_ values: [String: [Float]]) -> [String: Tensor] {
        values.reduce(into: [:]) { $0[$1.key] = Tensor(shape: shapes[$1.key]!, scalars: $1.value) }
    }
}

@Suite("Optimiser: AdamW, gradient clipping, warm-up and the moving average of the weights")
struct OptimiserTests {
    @Test("three clipped AdamW steps give torch.optim.AdamW's parameters")
    func matchesTorch() throws {
        let fixture = try AdamWFixture.load()
        let s = fixture.settings
        var optimiser = AdamW(learningRate: s.lr, beta1: s.betas[0], beta2: s.betas[1], epsilon: s.eps, weightDecay: s.weight_decay)
        var parameters = fixture.tensors(fixture.initial)
        for (index, step) in fixture.steps.enumerated() {
            var gradients = fixture.tensors(step.gradients)
            let norm = clipGradientNorm(&gradients, maxNorm: s.max_norm)
            // Float32 on both sides, a handful of operations per number in a slightly different
            // order: a few ulps of numbers of size ~1, so 1e-6.
            #expect(abs(norm - step.norm) <= 1e-6 * step.norm, "step \(index): norm \(norm) vs \(step.norm)")
            optimiser.step(&parameters, gradients: gradients)
            for (name, expected) in fixture.tensors(step.after) {
                #expect(parameters[name]!.maxAbsDifference(expected) < 1e-6, "step \(index), \(name)")
            }
        }
        #expect(fixture.steps[2].norm > s.max_norm)   // the third step was clipped
        #expect(optimiser.steps == 3)
    }

    @Test("the first step moves every weight by the learning rate against its gradient's sign, after the decay")
    func firstStep() {
        // At t = 1 the corrected averages are m̂ = g and v̂ = g², so the step is lr · g / (|g| + ε).
        var optimiser = AdamW(learningRate: 0.1, weightDecay: 0.5)
        var parameters = ["w": Tensor(shape: [3], scalars: [1, -2, 0.5])]
        optimiser.step(&parameters, gradients: ["w": Tensor(shape: [3], scalars: [3, -0.25, 1e-3])])
        let decayed: [Float] = [1, -2, 0.5].map { $0 * (1 - 0.1 * 0.5) }
        let expected = [decayed[0] - 0.1, decayed[1] + 0.1, decayed[2] - 0.1 * 1e-3 / (1e-3 + 1e-8)]
        for i in 0..<3 { #expect(abs(parameters["w"]!.scalars[i] - expected[i]) < 1e-6) }
    }

    @Test("a parameter without a gradient is left alone")
    func missingGradient() {
        var optimiser = AdamW(learningRate: 0.1)
        var parameters = ["a": Tensor(shape: [1], scalars: [1]), "b": Tensor(shape: [1], scalars: [2])]
        optimiser.step(&parameters, gradients: ["a": Tensor(shape: [1], scalars: [1])])
        #expect(parameters["b"]!.scalars == [2])
        #expect(parameters["a"]!.scalars != [1])
    }

    @Test("clipping leaves short gradients alone and scales long ones to the limit, keeping their direction")
    func clipping() {
        var short = ["a": Tensor(shape: [2], scalars: [0.3, 0.4])]      // length 0.5
        #expect(abs(clipGradientNorm(&short, maxNorm: 1) - 0.5) < 1e-7)
        #expect(short["a"]!.scalars == [0.3, 0.4])
        var long = ["a": Tensor(shape: [2], scalars: [3, 0]), "b": Tensor(shape: [1], scalars: [4])]   // length 5
        #expect(abs(clipGradientNorm(&long, maxNorm: 1) - 5) < 1e-6)
        #expect(abs(long["a"]!.scalars[0] - 0.6) < 1e-6 && abs(long["b"]!.scalars[0] - 0.8) < 1e-6)
    }

    @Test("warm-up: lr rises linearly over the warm-up steps, then stays at the base")
    func warmup() {
        let schedule = LearningRateWarmup(base: 1e-4, warmupSteps: 100)
        #expect(abs(schedule.rate(atStep: 1) - 1e-6) < 1e-12)
        #expect(abs(schedule.rate(atStep: 50) - 5e-5) < 1e-10)
        #expect(schedule.rate(atStep: 100) == 1e-4 && schedule.rate(atStep: 1000) == 1e-4)
        #expect(LearningRateWarmup(base: 3, warmupSteps: 0).rate(atStep: 1) == 3)
    }

    @Test("the moving average: a short memory at first (decay 2/11, then 3/12), 0.9999 later, and it converges")
    func movingAverage() {
        var ema = ExponentialMovingAverage(["w": Tensor(shape: [1], scalars: [0])], decay: 0.9999)
        let target = ["w": Tensor(shape: [1], scalars: [1])]
        ema.update(target)
        #expect(abs(ema.shadow["w"]!.scalars[0] - 9.0 / 11) < 1e-6)              // 0 − (1 − 2/11)·(0 − 1)
        ema.update(target)
        #expect(abs(ema.shadow["w"]!.scalars[0] - (1 - 2.0 / 11 * 3 / 12)) < 1e-6)
        for _ in 0..<200 { ema.update(target) }
        #expect(abs(ema.shadow["w"]!.scalars[0] - 1) < 1e-6)
        #expect(ema.updates == 202)
    }
}
