import Foundation
import StableDiffusion
import TensorCore

// Shared by the scheduler tests: the reference files written by
// Tools/reference/make_scheduler_reference.py, the fake model both sides run, and the two
// sampling loops of diffusers' pipelines.

/// One `Fixtures/schedulers/<kind>.json` file.
struct SchedulerReference: Decodable {
    struct Run: Decodable {
        let steps: Int
        let seed: UInt64
        let eta: Float
        let timesteps: [Float]
        let sigmas: [Float]?
        let initNoiseSigma: Float
        let final: [Float]
        let x0: [[Float]]?
    }
    struct ImageToImageRun: Decodable {
        let steps: Int
        let strength: Double
        let seed: UInt64
        let startIndex: Int
        let noised: [Float]
        let final: [Float]
        let x0: [[Float]]
    }
    struct Fingerprints: Decodable {
        let spacing: String
        let timestepHashes: [String]
        let sigmaSums: [Double]?
        let rejectedSteps: [Int]
        /// [steps, index, timestep]: DPM-Solver timesteps that were within 2e-5 of a rounding tie.
        let nearTies: [[Int]]
    }

    let scheduler: String
    let shape: [Int]
    let txt2img: [Run]
    let img2img: ImageToImageRun
    let allStepCounts: [Fingerprints]

    static func load(_ kind: SchedulerKind) throws -> SchedulerReference {
        try decode(SchedulerReference.self, file: "\(kind.rawValue).json")
    }

    static func decode<T: Decodable>(_ type: T.Type, file: String) throws -> T {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
            .appendingPathComponent("schedulers/\(file)")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(T.self, from: Data(contentsOf: url))
    }
}

/// The stand-in for the UNet: eps(x, t) = 0.5 tanh(x) + (0.01 t / 1000) cos(k), k the flat index,
/// computed in Double and rounded once, exactly as the reference script does it in float64.
func fakeModel(_ x: Tensor, timestep t: Float) -> Tensor {
    let c = 0.01 * Double(t) / 1000
    let values = x.scalars.enumerated().map { k, v in Float(0.5 * tanh(Double(v)) + c * cos(Double(k))) }
    return Tensor(shape: x.shape, scalars: values)
}

/// The "encoded image" of the img2img runs: 0.8 sin(0.37 k), rounded once from Double.
func initialImageLatents(shape: [Int]) -> Tensor {
    let count = shape.reduce(1, *)
    return Tensor(shape: shape, scalars: (0..<count).map { Float(0.8 * sin(0.37 * Double($0))) })
}

/// `StableDiffusionPipeline`'s loop: latents = randn · initNoiseSigma, then scale → model → step.
func sampleTextToImage(_ scheduler: inout any Scheduler, shape: [Int], seed: UInt64)
    -> (final: Tensor, x0: [Tensor]) {
    var generator = TorchGenerator(seed: seed)
    var latents = generator.randn(shape) * scheduler.initNoiseSigma
    var x0s: [Tensor] = []
    for i in scheduler.timesteps.indices {
        let eps = fakeModel(scheduler.scaleModelInput(latents, stepIndex: i), timestep: scheduler.timesteps[i])
        let out = scheduler.step(modelOutput: eps, stepIndex: i, sample: latents, generator: &generator)
        latents = out.prevSample
        x0s.append(out.predictedOriginal)
    }
    return (latents, x0s)
}

/// `StableDiffusionImg2ImgPipeline`'s loop: noise the image latents to the first step's level,
/// then run the remaining steps.
func sampleImageToImage(_ scheduler: inout any Scheduler, image: Tensor, strength: Double, seed: UInt64)
    throws -> (noised: Tensor, final: Tensor, x0: [Tensor], steps: ImageToImageSteps) {
    let plan = try scheduler.imageToImageSteps(strength: strength)
    var generator = TorchGenerator(seed: seed)
    let noise = generator.randn(image.shape)
    let noised = scheduler.addNoise(original: image, noise: noise, stepIndex: plan.noiseStepIndex)
    var latents = noised
    var x0s: [Tensor] = []
    for i in plan.stepIndices {
        let eps = fakeModel(scheduler.scaleModelInput(latents, stepIndex: i), timestep: scheduler.timesteps[i])
        let out = scheduler.step(modelOutput: eps, stepIndex: i, sample: latents, generator: &generator)
        latents = out.prevSample
        x0s.append(out.predictedOriginal)
    }
    return (noised, latents, x0s, plan)
}

/// Largest |a − b| / max(1, |b|): absolute error for values below 1, relative above (the latents
/// of the Euler samplers start at σ_max ≈ 14.6).
func maxScaledError(_ actual: [Float], _ expected: [Float]) -> Float {
    precondition(actual.count == expected.count, "\(actual.count) values vs \(expected.count)")
    return zip(actual, expected).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
}

/// 64-bit FNV-1a, fed the way the reference script feeds it: a little-endian UInt32 count, then
/// the little-endian float32 bytes of each value.
struct FNV1a {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    mutating func add(_ byte: UInt8) { value = (value ^ UInt64(byte)) &* 0x100_0000_01B3 }
    mutating func add(_ word: UInt32) { for shift in stride(from: 0, to: 32, by: 8) { add(UInt8((word >> UInt32(shift)) & 0xFF)) } }
    mutating func add(_ values: [Float]) { for v in values { add(v.bitPattern) } }
    mutating func add(counted values: [Float]) { add(UInt32(values.count)); add(values) }
    var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

extension SchedulerConfiguration {
    /// The sampler fixtures run every sampler with "leading" spacing given explicitly (SD 1.5's
    /// PNDM default). Without it, Euler and DPM-Solver fall back to their own "linspace", as in
    /// diffusers; PipelineTests checks that case against whole pipeline runs.
    static let sd15Leading = SchedulerConfiguration.sd15.with(spacing: .leading)

    func with(spacing: TimestepSpacing) -> SchedulerConfiguration {
        var copy = self
        copy.timestepSpacing = spacing
        return copy
    }
}
