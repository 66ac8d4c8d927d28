import StableDiffusion
import TensorCore
import Testing

/// Whole sampling loops with a fake model, against the same loops run by diffusers' schedulers.
///
/// Tolerance, on |a − b| / max(1, |b|): 1e-5 + 5e-8 per step (1.25e-5 for 50 steps, 6e-5 for
/// 1000). The fake model is computed in Double on both sides and rounded once, and every
/// scheduler line repeats PyTorch's float32 operations in the same order, so what is left are
/// last-bit differences in the inputs, carried through the steps:
/// - `TorchGenerator.randn` differs from this PyTorch's vectorized `randn` in the last bits (55 of
///   64 values, at most 8.9e-7; PyTorch's AVX2 Box–Muller uses its own polynomial log/sin/cos);
/// - PyTorch's float32 sqrt, log and exp are not the correctly rounded ones (σ_t differs by one
///   ulp for 190 of 1000 t).
/// Measured worst cases: 6.3e-6 for ≤ 50 steps (Euler ancestral, 50 steps), 1.1e-5 for PNDM with
/// 999 steps, 3.3e-5 for Euler ancestral with 1000 steps (a fresh, slightly different noise
/// tensor each step), 2.0e-6 for img2img. A wrong coefficient or an off-by-one step shows up as
/// 1e-3 or more.
@Suite("Scheduler sampling loops")
struct SchedulerSamplingTests {
    static func tolerance(steps: Int) -> Float { 1e-5 + 5e-8 * Float(steps) }

    @Test("text-to-image loops match diffusers (final latents and every step's x0)",
          arguments: SchedulerKind.allCases)
    func textToImage(kind: SchedulerKind) throws {
        let reference = try SchedulerReference.load(kind)
        for run in reference.txt2img {
            var scheduler: any Scheduler = run.eta > 0
                ? try DDIMScheduler(steps: run.steps, eta: run.eta)
                : try kind.makeScheduler(steps: run.steps, configuration: .sd15Leading)
            let result = sampleTextToImage(&scheduler, shape: reference.shape, seed: run.seed)
            let label = "\(kind.rawValue), \(run.steps) steps, eta \(run.eta)"
            let tolerance = Self.tolerance(steps: run.steps)
            let finalError = maxScaledError(result.final.scalars, run.final)
            #expect(finalError <= tolerance, "final latents, \(label): error \(finalError)")
            #expect(result.x0.count == scheduler.timesteps.count)
            if let x0s = run.x0 {
                let x0Error = zip(result.x0, x0s).map { maxScaledError($0.scalars, $1) }.max() ?? 0
                #expect(result.x0.count == x0s.count, "\(label)")
                #expect(x0Error <= tolerance, "x0, \(label): error \(x0Error)")
            }
        }
    }

    @Test("image-to-image (strength 0.6) matches diffusers' get_timesteps, add_noise and loop",
          arguments: SchedulerKind.allCases)
    func imageToImage(kind: SchedulerKind) throws {
        let reference = try SchedulerReference.load(kind).img2img
        var scheduler = try kind.makeScheduler(steps: reference.steps, configuration: .sd15Leading)
        let image = initialImageLatents(shape: [1, 4, 4, 4])
        let result = try sampleImageToImage(&scheduler, image: image, strength: reference.strength, seed: reference.seed)
        #expect(result.steps.noiseStepIndex == reference.startIndex)
        #expect(result.x0.count == reference.x0.count)
        let noisedError = maxScaledError(result.noised.scalars, reference.noised)
        let finalError = maxScaledError(result.final.scalars, reference.final)
        let x0Error = zip(result.x0, reference.x0).map { maxScaledError($0.scalars, $1) }.max() ?? 0
        let tolerance = Self.tolerance(steps: reference.steps)
        #expect(noisedError <= tolerance, "\(kind.rawValue) noised: \(noisedError)")
        #expect(finalError <= tolerance, "\(kind.rawValue) final: \(finalError)")
        #expect(x0Error <= tolerance, "\(kind.rawValue) x0: \(x0Error)")
    }

    @Test("reset() forgets the history: sampling again gives the same latents as a fresh scheduler",
          arguments: SchedulerKind.allCases)
    func resetStartsOver(kind: SchedulerKind) throws {
        var scheduler = try kind.makeScheduler(steps: 7, configuration: .sd15Leading)
        let first = sampleTextToImage(&scheduler, shape: [1, 4, 4, 4], seed: 3)
        scheduler.reset()
        let second = sampleTextToImage(&scheduler, shape: [1, 4, 4, 4], seed: 3)
        #expect(first.final == second.final)
        #expect(first.x0 == second.x0)
    }

    @Test("Euler ancestral draws fresh noise from the generator each step; DDIM with eta = 0 draws none")
    func randomness() throws {
        var ancestral: any Scheduler = try EulerAncestralDiscreteScheduler(steps: 5)
        var ddim: any Scheduler = try DDIMScheduler(steps: 5)
        let a = sampleTextToImage(&ancestral, shape: [1, 4, 4, 4], seed: 1).final
        let b = sampleTextToImage(&ancestral, shape: [1, 4, 4, 4], seed: 2).final
        #expect(a != b)
        var generator = TorchGenerator(seed: 9)
        let x = generator.randn([1, 4, 4, 4])
        var g1 = TorchGenerator(seed: 1), g2 = TorchGenerator(seed: 2)
        let eps = fakeModel(x, timestep: 981)
        #expect(ddim.step(modelOutput: eps, stepIndex: 0, sample: x, generator: &g1).prevSample
            == ddim.step(modelOutput: eps, stepIndex: 0, sample: x, generator: &g2).prevSample)
        var untouched = TorchGenerator(seed: 1)
        #expect(g1.randn([4]) == untouched.randn([4]))
    }
}
