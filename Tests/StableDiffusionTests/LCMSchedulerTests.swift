import Foundation
import StableDiffusion
import TensorCore
import Testing

/// What is particular to LCM (its sampling loops are checked with the other samplers' in
/// SchedulerSamplingTests, against `Fixtures/schedulers/lcm.json`).
@Suite("LCM sampler: its timestep grid, boundary conditions and fresh noise")
struct LCMSchedulerTests {
    struct Scalings: Decodable {
        let timesteps: [Int]
        let cSkip: [Float]
        let cOut: [Float]
    }
    struct File: Decodable { let boundaryScalings: Scalings }

    @Test("N steps take every (50/N)-th timestep of the distillation grid from the top: 4 steps are 999, 759, 499, 259")
    func timesteps() throws {
        #expect(try LCMScheduler(steps: 4).timesteps == [999, 759, 499, 259])
        #expect(try LCMScheduler(steps: 1).timesteps == [999])
        #expect(try LCMScheduler(steps: 8).timesteps == [999, 879, 759, 639, 499, 379, 259, 139])
        #expect(try LCMScheduler(steps: 50).timesteps.last == 19)
        #expect(throws: SchedulerError.tooManyConsistencySteps(51, originalSteps: 50)) { try LCMScheduler(steps: 51) }
    }

    // c_skip matches to the bit. c_out = s t / (s²t² + σ_d²)^0.5 comes out of PyTorch's float32
    // pow and division, which are not correctly rounded at every input: 4 of the 51 values differ
    // from the correctly rounded float32 (and float64) results by 1-2 ulps (≤ 1.2e-7 near 1).
    @Test("c_skip and c_out at every grid timestep and at 0 equal diffusers' float32 values (c_out within 2 ulps)")
    func boundaryScalings() throws {
        let reference = try SchedulerReference.decode(File.self, file: "lcm.json").boundaryScalings
        let scheduler = try LCMScheduler(steps: 4)
        #expect(reference.timesteps.count == 51)
        for (i, t) in reference.timesteps.enumerated() {
            let (skip, out) = scheduler.boundaryScalings(t)
            #expect(skip == reference.cSkip[i], "t = \(t)")
            #expect(abs(out - reference.cOut[i]) <= 2 * reference.cOut[i].ulp, "t = \(t)")
        }
        // At t = 0 the consistency function is the identity: c_skip = 1, c_out = 0.
        #expect(scheduler.boundaryScalings(0) == (1, 0))
    }

    @Test("fresh noise between steps, none after the last: one draw per step but the last")
    func noiseDraws() throws {
        let scheduler = try LCMScheduler(steps: 3)
        var generator = TorchGenerator(seed: 9)
        let x = generator.randn([1, 4, 2, 2])
        var draws = TorchGenerator(seed: 9)
        _ = draws.randn([1, 4, 2, 2])
        for i in 0..<3 {
            let eps = x * 0.1
            let (prev, denoised) = scheduler.step(modelOutput: eps, stepIndex: i, sample: x, generator: &generator)
            if i < 2 {
                // x_prev = √ᾱ_prev · denoised + √(1 − ᾱ_prev) · z with z the next draw.
                let alpha = scheduler.alphasCumprod[scheduler.integerTimesteps[i + 1]]
                let z = draws.randn([1, 4, 2, 2])
                let expected = denoised.zipMap(z) { d, z in alpha.squareRoot() * d + (1 - alpha).squareRoot() * z }
                #expect(prev == expected)
            } else {
                #expect(prev == denoised)
            }
        }
        // Both generators are at the same place: nothing else was drawn.
        #expect(generator.randn([3]) == draws.randn([3]))
    }
}
