import Foundation

/// The forward-process noise schedule: how much noise is added at each of the `T` training steps.
///
/// Diffusion models (Ho et al., 2020) corrupt an image `x₀` step by step,
/// `q(x_t | x_{t−1}) = N(√(1 − β_t) x_{t−1}, β_t I)`, and a neat property lets us jump to any step
/// in one go:
///
///     x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε,    ε ~ N(0, I),    ᾱ_t = Π_{s ≤ t} (1 − β_s)
///
/// `ᾱ_t` ("alpha bar") is the share of the *signal's variance* left at step `t`; `1 − ᾱ_t` is the
/// noise's share. The signal-to-noise ratio is `SNR(t) = ᾱ_t / (1 − ᾱ_t)`.
///
/// Indices here run `0..<T` like PyTorch's (`t = 0` is the first, lightly-noised step and
/// `t = 999` the last, almost pure noise).
///
/// ```swift
/// let schedule = NoiseSchedule(.scaledLinear)     // Stable Diffusion's
/// schedule.alphasCumprod[999]                     // 0.0047: under 0.5% of the signal left
/// ```
public struct NoiseSchedule: Sendable {
    /// The three schedules people compare.
    public enum Kind: String, CaseIterable, Sendable {
        /// Stable Diffusion's: β linear in √β from √0.00085 to √0.012 (the "scaled_linear" of
        /// diffusers), so it starts slowly and ends gently.
        case scaledLinear = "scaled-linear"
        /// DDPM's original (Ho et al., 2020): β linear from 0.0001 to 0.02.
        case linear
        /// Improved DDPM's (Nichol & Dhariwal, 2021): ᾱ follows a squared cosine, destroying
        /// information more evenly over time ("squaredcos_cap_v2" in diffusers).
        case cosine

        public var summary: String {
            switch self {
            case .scaledLinear: return "Stable Diffusion: √β linear from √0.00085 to √0.012"
            case .linear: return "DDPM: β linear from 0.0001 to 0.02"
            case .cosine: return "cosine: ᾱ(t) = cos²((t/T + 0.008)/1.008 · π/2)"
            }
        }
    }

    public let kind: Kind
    /// β_t: the variance of the noise added at step t.
    public let betas: [Double]
    /// ᾱ_t = Π_{s ≤ t} (1 − β_s).
    public let alphasCumprod: [Double]

    public var trainingSteps: Int { betas.count }

    public init(_ kind: Kind, trainingSteps: Int = 1000) {
        self.kind = kind
        let n = trainingSteps
        func linspace(_ a: Double, _ b: Double) -> [Double] {
            n == 1 ? [a] : (0..<n).map { a + (b - a) * Double($0) / Double(n - 1) }
        }
        switch kind {
        case .scaledLinear:
            betas = linspace(0.00085.squareRoot(), 0.012.squareRoot()).map { $0 * $0 }
        case .linear:
            betas = linspace(0.0001, 0.02)
        case .cosine:
            // β_t = 1 − ᾱ(t+1)/ᾱ(t) from the continuous cosine curve, capped at 0.999 so the last
            // step does not divide by zero.
            func alphaBar(_ t: Double) -> Double {
                let angle = (t / Double(n) + 0.008) / 1.008 * Double.pi / 2
                return cos(angle) * cos(angle)
            }
            betas = (0..<n).map { min(1 - alphaBar(Double($0 + 1)) / alphaBar(Double($0)), 0.999) }
        }
        var product = 1.0
        alphasCumprod = betas.map { beta in
            product *= 1 - beta
            return product
        }
    }

    /// √ᾱ_t: how much of the original image survives in x_t.
    public func signalScale(at t: Int) -> Double { alphasCumprod[t].squareRoot() }
    /// √(1 − ᾱ_t): how much noise is mixed into x_t.
    public func noiseScale(at t: Int) -> Double { (1 - alphasCumprod[t]).squareRoot() }
    /// SNR(t) = ᾱ_t / (1 − ᾱ_t).
    public func signalToNoise(at t: Int) -> Double { alphasCumprod[t] / (1 - alphasCumprod[t]) }
    /// σ_t = √((1 − ᾱ_t) / ᾱ_t), the noise level in the "variance exploding" form x₀ + σ ε that the
    /// Euler and DPM-Solver samplers work with.
    public func sigma(at t: Int) -> Double { ((1 - alphasCumprod[t]) / alphasCumprod[t]).squareRoot() }
}

import TensorCore

extension NoiseSchedule {
    /// Samples q(x_t | x₀) in one jump: `x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε`.
    public func addNoise(to original: Tensor, noise: Tensor, at t: Int) -> Tensor {
        precondition((0..<trainingSteps).contains(t), "timestep \(t) outside 0..<\(trainingSteps)")
        return original.scaled(Float(signalScale(at: t)), plus: noise, times: Float(noiseScale(at: t)))
    }
}

// MARK: - The same schedule in float32, number for number as diffusers computes it

extension NoiseSchedule {
    /// β_t and ᾱ_t in float32, rounded exactly where PyTorch rounds them in diffusers' schedulers.
    ///
    /// The samplers use these rather than the Double values above. Near t = 0 the noise level
    /// σ_t = √((1 − ᾱ_t)/ᾱ_t) subtracts two nearly equal numbers, so the float32 rounding of ᾱ_t
    /// moves σ_0 by 1.3·10⁻⁵ (relative): small, but visible in the last digits of a latent.
    ///
    /// - `torch.linspace(a, b, n, dtype=float32)` takes the step `δ = (b − a)/(n − 1)` in float32,
    ///   then `a + δ·i` for the first half and `b − δ·(n − 1 − i)` for the second half, each with a
    ///   single rounding (a fused multiply-add);
    /// - scaled_linear squares that: `β = linspace(√β_start, √β_end)²`, linear uses it as is,
    ///   and the cosine schedule's βs are computed in double and rounded once;
    /// - `torch.cumprod` keeps its running product in double and rounds each ᾱ_t to float32.
    ///
    /// `betaStart`/`betaEnd` are ignored by `.cosine`.
    public static func float32(_ kind: Kind, trainingSteps: Int = 1000,
                               betaStart: Double, betaEnd: Double) -> (betas: [Float], alphasCumprod: [Float]) {
        func torchLinspace(_ a: Double, _ b: Double) -> [Float] {
            let n = trainingSteps, start = Float(a), end = Float(b)
            guard n > 1 else { return [start] }
            let step = (end - start) / Float(n - 1)
            return (0..<n).map { i in
                i < n / 2 ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(n - 1 - i))
            }
        }
        let betas: [Float]
        switch kind {
        case .scaledLinear: betas = torchLinspace(betaStart.squareRoot(), betaEnd.squareRoot()).map { $0 * $0 }
        case .linear: betas = torchLinspace(betaStart, betaEnd)
        case .cosine: betas = NoiseSchedule(.cosine, trainingSteps: trainingSteps).betas.map { Float($0) }
        }
        var product = 1.0                                  // ᾱ_t = Π_{s ≤ t} (1 − β_s), in double
        let alphasCumprod = betas.map { beta -> Float in
            product *= Double(1 - beta)                    // α_s = 1 − β_s is rounded to float32 first
            return Float(product)
        }
        return (betas, alphasCumprod)
    }
}
