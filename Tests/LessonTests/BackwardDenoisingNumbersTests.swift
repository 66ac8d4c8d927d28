import Foundation
import LessonKit
import StableDiffusion
import Testing
import TensorCore

/// Lesson 2's numbers: the optimal denoiser, the samplers it drives, and the step statistics.
@Suite("Lesson 2: the numbers backward-denoising computes")
struct BackwardDenoisingNumbersTests {
    /// Two 2-D examples and one noisy point, small enough to work out by hand (see `weights`).
    static let examples: [[Float]] = [[1, 0], [0, 1]]

    @Test("the denoiser's weights are the softmax of −‖x_t − √ᾱ x⁽ⁱ⁾‖² / (2(1 − ᾱ)), worked out by hand")
    func weights() {
        // x_t = (0.5, 0.2), ᾱ = 0.64: √ᾱ = 0.8, 2(1 − ᾱ) = 0.72.
        // ‖x_t − 0.8·(1, 0)‖² = 0.3² + 0.2² = 0.13;  ‖x_t − 0.8·(0, 1)‖² = 0.5² + 0.6² = 0.61.
        // w₁ = 1 / (1 + e^(−(0.61 − 0.13)/0.72)) = 1 / (1 + e^(−2/3)).
        let denoiser = OptimalDenoiser(examples: Self.examples)
        let w = denoiser.weights([0.5, 0.2], alphaBar: 0.64)
        let w1 = 1 / (1 + exp(-2.0 / 3))
        #expect(abs(w[0] - w1) < 1e-6)
        #expect(abs(w[0] + w[1] - 1) < 1e-12)
        // x̂₀ = w₁·(1, 0) + w₂·(0, 1), and ε̂ = (x_t − √ᾱ x̂₀) / √(1 − ᾱ) with √(1 − ᾱ) = 0.6.
        let x = Tensor(shape: [1, 2], scalars: [0.5, 0.2])
        let (noise, clean, all) = denoiser.predictNoise(x, alphaBar: 0.64)
        #expect(all == [w])
        #expect(abs(Double(clean.scalars[0]) - w1) < 1e-6 && abs(Double(clean.scalars[1]) - (1 - w1)) < 1e-6)
        #expect(abs(Double(noise.scalars[0]) - (0.5 - 0.8 * w1) / 0.6) < 1e-5)
        #expect(abs(Double(noise.scalars[1]) - (0.2 - 0.8 * (1 - w1)) / 0.6) < 1e-5)
    }

    @Test("a subset gives zero weight outside it; a one-picture subset predicts that picture exactly")
    func subsetWeights() {
        let set = PictureSet(size: 16)
        let denoiser = OptimalDenoiser(matrix: set.matrix)
        var generator = TorchGenerator(seed: 5)
        let x = generator.randn([1, 3, 16, 16])
        let (_, clean, weights) = denoiser.predictNoise(x, alphaBar: 0.1, subset: [4])
        #expect(weights[0] == [0, 0, 0, 0, 1, 0, 0, 0])
        #expect(clean == set.pictures[4].pixels)
        let some = denoiser.weights(x.scalars[...], alphaBar: 0.1, subset: [1, 6])
        #expect([0, 2, 3, 4, 5, 7].allSatisfy { some[$0] == 0 })
        #expect(abs(some.reduce(0, +) - 1) < 1e-12)
    }

    @Test("the picture set: eight labelled pictures, one matrix row each, found by the words of their labels")
    func pictureSet() {
        let set = PictureSet(size: 16)
        #expect(set.pictures.count == 8)
        #expect(set.matrix.shape == [8, 3 * 16 * 16])
        #expect(Array(set.matrix.scalars[(2 * 768)..<(3 * 768)]) == set.pictures[2].pixels.scalars)
        #expect(set.indices(matching: "moon") == [1])
        #expect(set.indices(matching: "sea") == [0, 1, 6])
        #expect(set.indices(matching: "Sun over") == [0])
        #expect(set.indices(matching: "red fox").isEmpty)
        #expect(set.pictures.allSatisfy { TensorSummary($0.pixels).min >= -1 && TensorSummary($0.pixels).max <= 1 })
    }

    @Test("D = 3 · size² numbers per picture, and pure noise has length about √D")
    func dimensions() {
        let set = PictureSet(size: 48)
        #expect(set.dimensions == 6912 && set.matrix.shape[1] == set.dimensions)
        var generator = TorchGenerator(seed: 11)
        let noise = generator.randn([1, 3, 48, 48])
        let length = noise.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        // ‖ε‖² is a χ² with D degrees of freedom: ‖ε‖ = √D within a few 1/√D.
        #expect(abs(length / set.noiseRadius - 1) < 0.03)
        #expect(abs(set.noiseRadius - 6912.0.squareRoot()) < 1e-12)
    }

    @Test("the nearest picture to a training picture is itself, at distance 0")
    func nearest() {
        let set = PictureSet(size: 16)
        for k in [0, 5] {
            let found = set.nearest(to: set.pictures[k].pixels)
            #expect(found.index == k && found.distance == 0)
        }
        // Half-way between pictures 2 and 3 both are √(Σ(d/2)²/n) = rms(2, 3)/2 away.
        let middle = set.pictures[2].pixels.scaled(0.5, plus: set.pictures[3].pixels, times: 0.5)
        let half = Difference.rootMeanSquare(set.pictures[2].pixels, set.pictures[3].pixels) / 2
        #expect(abs(set.nearest(to: middle).distance - half) < 1e-5)
    }

    @Test("DDIM with the denoiser: ᾱ from SD's schedule, σ = √((1 − ᾱ)/ᾱ), x_prev = √ᾱ_prev x̂₀ + √(1 − ᾱ_prev) ε̂")
    func ddimSteps() throws {
        let set = PictureSet(size: 16)
        let run = try OptimalDenoiser(matrix: set.matrix).sample(shape: [1, 3, 16, 16], steps: 10, eta: 0, seed: 7)
        let alphas = NoiseSchedule.float32(.scaledLinear, betaStart: 0.00085, betaEnd: 0.012).alphasCumprod
        let timesteps = try DDIMScheduler(steps: 10).integerTimesteps
        #expect(run.steps.map(\.timestep) == timesteps)
        for (i, step) in run.steps.enumerated() {
            #expect(step.index == i)
            #expect(step.alphaBar == alphas[step.timestep])
            #expect(abs(step.sigma - ((1 - step.alphaBar) / step.alphaBar).squareRoot()) <= 1e-6 * step.sigma)
            #expect(abs(step.weights.reduce(0, +) - 1) < 1e-9)
            #expect(step.weights[step.topPicture] == step.topWeight)
            if i + 1 < run.steps.count {
                let prev = run.steps[i + 1].alphaBar
                let expected = step.clean.scaled(prev.squareRoot(), plus: step.noise, times: (1 - prev).squareRoot())
                #expect(step.next.maxAbsDifference(expected) < 1e-4)
                #expect(run.steps[i + 1].latents == step.next)
            }
        }
        // After the last step the sample is a training picture plus √(1 − ᾱ₀) of noise at most.
        let nearest = set.nearest(to: run.result)
        #expect(nearest.index == run.steps.last!.topPicture)
        #expect(nearest.distance < 0.05)
    }

    @Test("the settled step is the first with a weight over 0.99")
    func settledStep() throws {
        let run = try OptimalDenoiser(matrix: PictureSet(size: 16).matrix).sample(shape: [1, 3, 16, 16], steps: 12,
                                                                                  eta: 1, seed: 3)
        let settled = run.settledStep
        #expect(run.steps[settled - 1].topWeight > 0.99 || settled == run.steps.count)
        #expect(run.steps.prefix(settled - 1).allSatisfy { $0.topWeight <= 0.99 })
    }

    @Test("guidance: ε = ε_uncond + w (ε_text − ε_uncond), and a one-picture subset draws that picture")
    func guidance() throws {
        let set = PictureSet(size: 16)
        let denoiser = OptimalDenoiser(matrix: set.matrix)
        let run = try denoiser.sample(shape: [1, 3, 16, 16], steps: 8, eta: 0, seed: 1,
                                      guidance: .init(subset: [3], scale: 3))
        let first = run.steps[0], a = first.alphaBar
        let uncond = denoiser.predictNoise(first.latents, alphaBar: a).noise
        let text = denoiser.predictNoise(first.latents, alphaBar: a, subset: [3]).noise
        for i in [0, 100, 767] {
            let expected = uncond.scalars[i] + 3 * (text.scalars[i] - uncond.scalars[i])
            #expect(abs(first.noise.scalars[i] - expected) < 1e-4)
        }
        #expect(run.firstPredictions!.conditional == set.pictures[3].pixels)
        #expect(run.steps.allSatisfy { $0.topPicture == 3 && $0.topWeight == 1 })
        #expect(set.nearest(to: run.result).index == 3)
        // At w ≤ 1 the text's ε is used as is.
        let plain = try denoiser.sample(shape: [1, 3, 16, 16], steps: 8, eta: 0, seed: 1, guidance: .init(subset: [3], scale: 1))
        #expect(plain.steps[0].noise == text)
    }

    @Test("the probe: the noised picture's weight, the largest other, and the verdict's thresholds")
    func probe() {
        let set = PictureSet(size: 16)
        let denoiser = OptimalDenoiser(matrix: set.matrix)
        let alphas = NoiseSchedule.float32(.scaledLinear, betaStart: 0.00085, betaEnd: 0.012).alphasCumprod
        var generator = TorchGenerator(seed: 42)
        let noise = generator.randn([1, 3, 16, 16])
        let probes = denoiser.probe(picture: 2, pixels: set.pictures[2].pixels, noise: noise, timesteps: [999, 500, 0],
                                    alphasCumprod: alphas)
        for probe in probes {
            let a = alphas[probe.timestep]
            #expect(probe.alphaBar == a)
            #expect(probe.noisy == set.pictures[2].pixels.scaled(a.squareRoot(), plus: noise, times: (1 - a).squareRoot()))
            #expect(probe.weight + probe.largestOther <= 1 + 1e-12)
            let expected: DenoiserProbe.Certainty = probe.weight > 0.99 ? .certain : probe.weight < 0.2 ? .blend : .emerging
            #expect(probe.certainty == expected)
        }
        // At t = 0 almost no noise is left (√(1 − ᾱ₀) ≈ 0.03): the denoiser is certain.
        #expect(probes[2].certainty == .certain)
    }

    @Test("evenly spaced steps: ⌊i (total − 1)/(count − 1)⌋, first and last included")
    func stepSelection() {
        // 24/7 = 3.43, 48/7 = 6.86, 72/7 = 10.3, 96/7 = 13.7, 120/7 = 17.1, 144/7 = 20.6.
        #expect(StepSelection.evenlySpaced(25, count: 8) == [0, 3, 6, 10, 13, 17, 20, 24])
        #expect(StepSelection.evenlySpaced(5, count: 8) == [0, 1, 2, 3, 4])
        #expect(StepSelection.evenlySpaced(9, count: 5) == [0, 2, 4, 6, 8])
    }

    @Test("toy shapes: point counts and radii as drawn")
    func toyShapes() {
        #expect(ToyShape.spiral.points(count: 400).count == 400)
        let smiley = ToyShape.smiley.points(count: 400)
        #expect(smiley.count == 400)                            // face 200, mouth 100, eyes 2 · 50
        #expect(smiley.prefix(200).allSatisfy { abs(($0.x * $0.x + $0.y * $0.y).squareRoot() - 1.3) < 1e-5 })
        let spiral = ToyShape.spiral.points(count: 400).map { ($0.x * $0.x + $0.y * $0.y).squareRoot() }
        #expect(zip(spiral, spiral.dropFirst()).allSatisfy { $0 < $1 })   // the radius grows along the arm
    }

    @Test("the 2-D run: one snapshot per step, and samples end on the shape")
    func toyRun() throws {
        let run = try ToyRun(shape: .spiral, steps: 10, seed: 42, samples: 200, dataPoints: 100)
        #expect(run.steps == 10 && run.path.count == 11 && run.path.allSatisfy { $0.shape == [200, 2] })
        let timesteps = try DDIMScheduler(steps: 10).integerTimesteps
        #expect(run.timesteps == timesteps)
        // The mean distance, recomputed by brute force for the starting cloud.
        let points = run.path[0].scalars
        var total = 0.0
        for j in 0..<200 {
            total += run.data.map { Double(hypot($0.x - points[2 * j], $0.y - points[2 * j + 1])) }.min()!
        }
        #expect(abs(run.meanDistance(after: 0) - total / 200) < 1e-9)
        #expect(run.meanDistance(after: 10) < run.meanDistance(after: 0) / 2)
        #expect(ToyRun.distanceMarks(steps: 25) == [0, 12, 18, 25])
        #expect(ToyRun.snapshotSteps(steps: 25) == [0, 12, 18, 21, 22, 23, 24, 25])   // every step of the last eighth
        #expect(ToyRun.snapshotSteps(steps: 50) == [0, 25, 37, 43, 45, 47, 49, 50])
        #expect(ToyRun.snapshotSteps(steps: 1) == [0, 1])
    }

    @Test("a step's σ: the sampler's own, else √((1 − ᾱ_t)/ᾱ_t) at the rounded timestep")
    func noiseLevel() {
        let alphas: [Float] = [0.99, 0.5, 0.2]
        #expect(CheckpointStep.noiseLevel(sigma: 14.6, timestep: 999, alphasCumprod: alphas) == 14.6)
        #expect(CheckpointStep.noiseLevel(sigma: nil, timestep: 1.4, alphasCumprod: alphas) == 1)   // √(0.5/0.5)
        #expect(CheckpointStep.noiseLevel(sigma: nil, timestep: 1.6, alphasCumprod: alphas) == 2)   // √(0.8/0.2)
        #expect(CheckpointStep.noiseLevel(sigma: nil, timestep: 7, alphasCumprod: alphas) == 2)     // kept in range
    }

    @Test("the guidance map averages |ε_text − ε_uncond| over the channels")
    func guidanceMap() {
        // Two channels of 1 x 2: |differences| (1, 3) and (3, 1) average to (2, 2).
        let u = Tensor(shape: [1, 2, 1, 2], scalars: [0, 0, 1, -1])
        let t = Tensor(shape: [1, 2, 1, 2], scalars: [1, -3, 4, 0])
        let map = CheckpointStep.guidanceMap(unconditional: u, text: t)
        #expect(map.values == [2, 2] && map.height == 1 && map.width == 2)
    }

    @Test("time per step, the comparison grid's cost, and grid cells")
    func timing() {
        let time = DenoisingTime(timings: [("text encoder", 0.5), ("denoising", 12), ("vae decode", 2)], steps: 24)
        #expect(time.seconds == 12 && time.perStep == 0.5)
        let cost = time.comparison(samplers: 3, stepCounts: [5, 10])      // 3 · (5 + 10) = 45 steps
        #expect(cost.steps == 45 && cost.seconds == 22.5)
        #expect(DenoisingTime(timings: [], steps: 0).perStep == 0)
        #expect(GridCell.size(width: 512, height: 512) == (256, 256))
        #expect(GridCell.size(width: 768, height: 512) == (256, 170))     // 512 · 256/768 = 170.7
        #expect(GridCell.size(width: 64, height: 96) == (128, 192))      // enlarged: the longer side becomes 192
        #expect(GridCell.size(width: 200, height: 100) == (200, 100))
    }
}
