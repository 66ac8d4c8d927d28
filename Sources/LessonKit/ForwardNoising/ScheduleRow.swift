import StableDiffusion

/// What a noise schedule does at one timestep t: one row of lesson 1's schedule table.
///
/// For data of unit variance, x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε carries variance ᾱ_t of picture
/// and 1 − ᾱ_t of noise, so the signal-to-noise ratio is SNR = ᾱ_t / (1 − ᾱ_t).
public struct ScheduleRow: Equatable, Sendable {
    /// The timestep t in 0...999.
    public let timestep: Int
    /// β_t: the variance of the noise the step into t adds.
    public let beta: Double
    /// ᾱ_t = Π_{s ≤ t} (1 − β_s): the share of the picture's variance left in x_t.
    public let alphaBar: Double
    /// √ᾱ_t: the factor in front of x₀.
    public let signalScale: Double
    /// √(1 − ᾱ_t): the factor in front of ε.
    public let noiseScale: Double
    /// ᾱ_t / (1 − ᾱ_t).
    public let signalToNoise: Double

    /// 100 · ᾱ_t: the percentage of x_t's variance that is picture, for data of unit variance.
    public var picturePercent: Double { 100 * alphaBar }

    /// The share of x_t's variance that is picture for a picture of variance `v` (noise ε has
    /// variance 1 and is independent of it): `ᾱ·v / (ᾱ·v + 1 − ᾱ)`. Equal to ᾱ only when v = 1;
    /// a picture of smaller variance drowns sooner.
    public func pictureShare(ofVariance v: Double) -> Double {
        alphaBar * v / (alphaBar * v + 1 - alphaBar)
    }
}

extension NoiseSchedule {
    /// The schedule's numbers at timestep `t` (0 ≤ t < trainingSteps).
    public func row(at t: Int) -> ScheduleRow {
        ScheduleRow(timestep: t, beta: betas[t], alphaBar: alphasCumprod[t], signalScale: signalScale(at: t),
                    noiseScale: noiseScale(at: t), signalToNoise: signalToNoise(at: t))
    }

    /// The first timestep at which noise carries more variance than the picture: the first t with
    /// ᾱ_t < ½, which is where SNR = ᾱ/(1 − ᾱ) falls below 1 (the last timestep if it never does).
    public var equalVarianceTimestep: Int {
        alphasCumprod.firstIndex { $0 < 0.5 } ?? trainingSteps - 1
    }

    /// SNR(t) = ᾱ_t / (1 − ᾱ_t) for every timestep, for plotting.
    public var signalToNoiseCurve: [Double] {
        (0..<trainingSteps).map { signalToNoise(at: $0) }
    }
}
