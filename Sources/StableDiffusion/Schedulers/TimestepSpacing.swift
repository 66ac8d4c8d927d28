import Foundation

// Which of the T = 1000 training noise levels a sampler visits when it runs N < T steps.
// The three rules of diffusers ("Common Diffusion Noise Schedules and Sample Steps are Flawed",
// Lin et al. 2023, table 2), for T = 1000, N = 10, steps_offset = 1:
//
//     leading   t = r·i + offset, r = T / N (integer division)   901, 801, ..., 101, 1
//     linspace  t = i·(T − 1)/(N − 1)                           999, 888, ..., 111, 0
//     trailing  t = round(T − i·T/N) − 1                        999, 899, ..., 199, 99
//
// SD 1.5 uses "leading", so its first step starts at t = 901 for 10 steps, not at the
// pure-noise end t = 999.

extension SchedulerConfiguration {
    /// The timesteps for `steps` sampling steps, noisiest first, computed as numpy does in
    /// diffusers' `set_timesteps`. Whole numbers except for "linspace", which DDIM and PNDM then
    /// round (half to even, `np.round`) and the Euler samplers keep as float32.
    public func spacedTimesteps(steps n: Int) -> [Double] {
        let T = numTrainTimesteps
        switch timestepSpacing {
        case .leading:
            let ratio = T / n                                       // step_ratio = T // N
            return (0..<n).reversed().map { Double($0 * ratio + stepsOffset) }
        case .linspace:
            return numpyLinspace(0, Double(T - 1), count: n).reversed()
        case .trailing:
            return numpyArange(from: Double(T), to: 0, step: -Double(T) / Double(n)).map {
                $0.rounded(.toNearestOrEven) - 1
            }
        }
    }

    /// Rounds DDIM's and PNDM's timesteps to whole numbers and checks that each indexes ᾱ_t.
    func integerTimesteps(steps: Int) throws -> [Int] {
        let timesteps = spacedTimesteps(steps: steps).map { Int($0.rounded(.toNearestOrEven)) }
        try checkRange(timesteps, steps: steps, upperBound: numTrainTimesteps)
        return timesteps
    }

    /// Throws on a timestep below 0 or at or above `upperBound`. Two cases reach this with SD 1.5:
    /// "leading" with 1000 steps ends at 999 + 1 = 1000, and "trailing" with some step counts (61,
    /// 103, ...) gets one extra step at t = −1 because np.arange's float length rounds up.
    func checkRange(_ timesteps: [Int], steps: Int, upperBound: Int) throws {
        if let bad = timesteps.first(where: { $0 < 0 || $0 >= upperBound }) {
            throw SchedulerError.timestepOutOfRange(steps: steps, timestep: bad, spacing: timestepSpacing.rawValue)
        }
    }
}

/// `np.linspace(start, stop, count)`: `start + i·step` with `step = (stop − start)/(count − 1)`,
/// the last value set to `stop` exactly.
func numpyLinspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
    guard count > 1 else { return count == 1 ? [start] : [] }
    let step = (stop - start) / Double(count - 1)
    return (0..<count).map { $0 == count - 1 ? stop : Double($0) * step + start }
}

/// `np.arange(start, stop, step)` for floats: `ceil((stop − start)/step)` values; numpy takes
/// the second value as `start + step` and the rest as `start + i·δ` with `δ = value₁ − value₀`.
func numpyArange(from start: Double, to stop: Double, step: Double) -> [Double] {
    let count = max(Int(((stop - start) / step).rounded(.up)), 0)
    let delta = (start + step) - start
    return (0..<count).map { i in i == 0 ? start : i == 1 ? start + step : start + Double(i) * delta }
}
