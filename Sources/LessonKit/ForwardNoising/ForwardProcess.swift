import StableDiffusion
import TensorCore

/// The forward process q(x_t | x₀) for one picture and one draw of noise.
///
/// Because every step only adds Gaussian noise, the whole chain collapses to one formula,
/// `x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε`, so any x_t is one jump away from x₀ with the same ε.
public struct ForwardProcess {
    /// x₀: the clean picture, `(1, 3, H, W)` in [−1, 1].
    public let clean: Tensor
    /// ε ~ N(0, I), the same shape as `clean`, drawn once and used at every timestep.
    public let noise: Tensor
    /// The schedule that gives ᾱ_t.
    public let schedule: NoiseSchedule

    /// Draws ε with `torch.randn`'s numbers for `seed` (TorchGenerator), in the shape of `clean`.
    public init(clean: Tensor, seed: UInt64, schedule: NoiseSchedule) {
        var generator = TorchGenerator(seed: seed)
        self.init(clean: clean, noise: generator.randn(clean.shape), schedule: schedule)
    }

    /// A process with a given ε (same shape as `clean`).
    public init(clean: Tensor, noise: Tensor, schedule: NoiseSchedule) {
        precondition(clean.shape == noise.shape, "x₀ and ε must have the same shape")
        (self.clean, self.noise, self.schedule) = (clean, noise, schedule)
    }

    /// x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε.
    public func noised(at t: Int) -> Tensor {
        schedule.addNoise(to: clean, noise: noise, at: t)
    }

    /// The same x₀ and ε under another schedule.
    public func with(schedule other: NoiseSchedule) -> ForwardProcess {
        ForwardProcess(clean: clean, noise: noise, schedule: other)
    }

    /// The timesteps of an animation with `frames` frames (at least 2), rising evenly from 0 to
    /// the last timestep: `t = frame · last / (frames − 1)`, rounded down.
    public static func animationTimesteps(frames: Int, last: Int = 999) -> [Int] {
        precondition(frames >= 2, "an animation needs at least two frames")
        return (0..<frames).map { $0 * last / (frames - 1) }
    }
}
