import Foundation
import StableDiffusion
import TensorCore

/// The reverse process in two dimensions: a cloud of points pulled onto a `ToyShape` by DDPM's
/// ancestral steps with the shape's optimal denoiser.
public struct ToyRun {
    /// The shape the data come from.
    public let shape: ToyShape
    /// The data set: the shape's points.
    public let data: [SIMD2<Float>]
    /// The samples before the first step (pure noise) and after every step: `steps + 1` tensors
    /// of shape `(points, 2)`.
    public let path: [Tensor]
    /// The training timestep of each step.
    public let timesteps: [Int]

    /// Runs `steps` DDPM steps (DDIM with η = 1) from `samples` points of N(0, I) (seed `seed`)
    /// towards `dataPoints` points of `shape`.
    public init(shape: ToyShape, steps: Int, seed: UInt64, samples: Int = 1000, dataPoints: Int = 400) throws {
        let data = shape.points(count: dataPoints)
        let denoiser = OptimalDenoiser(examples: data.map { [$0.x, $0.y] })
        let scheduler = try DDIMScheduler(steps: steps, eta: 1)
        var generator = TorchGenerator(seed: seed)
        var x = generator.randn([samples, 2])                           // (points, 2)
        var path = [x]
        for i in scheduler.timesteps.indices {
            let a = scheduler.alphasCumprod[scheduler.integerTimesteps[i]]
            let noise = denoiser.predictNoise(x, alphaBar: a).noise
            x = scheduler.step(modelOutput: noise, stepIndex: i, sample: x, generator: &generator).prevSample
            path.append(x)
        }
        (self.shape, self.data, self.path, self.timesteps) = (shape, data, path, scheduler.integerTimesteps)
    }

    /// The number of steps run.
    public var steps: Int { path.count - 1 }

    /// The samples after step `k` (k = 0: the starting noise) as points.
    public func samples(after k: Int) -> [SIMD2<Float>] {
        let points = path[k]
        return (0..<(points.count / 2)).map { SIMD2(points.scalars[2 * $0], points.scalars[2 * $0 + 1]) }
    }

    /// How far the samples after step `k` are from the shape: the mean over samples of the
    /// distance to the nearest data point, `(1/M) Σ_j min_i ‖s_j − d_i‖`.
    public func meanDistance(after k: Int) -> Double {
        let points = samples(after: k)
        let total = points.map { p in Double(data.map { hypot($0.x - p.x, $0.y - p.y) }.min()!) }.reduce(0, +)
        return total / Double(points.count)
    }

    /// The steps at which the lesson measures the distance: 0, ½, ¾ of the way, and the end.
    public static func distanceMarks(steps: Int) -> [Int] {
        [0, steps / 2, 3 * steps / 4, steps]
    }

    /// The steps the lesson draws: 0, ½ and ¾ of the way, then the last eighth closely (⅞, two
    /// points between, the last two steps), where the shape forms; sorted, no repeats.
    public static func snapshotSteps(steps: Int) -> [Int] {
        let tail = 7 * steps / 8, gap = steps - tail
        return Array(Set([0, steps / 2, 3 * steps / 4, tail, tail + gap / 3, tail + 2 * gap / 3, max(0, steps - 1), steps]))
            .sorted()
    }
}
