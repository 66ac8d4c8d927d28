/// The training noise schedule and the sampling options, read from diffusers'
/// `scheduler/scheduler_config.json`.
///
/// Property names follow the JSON keys (`betaStart` is `beta_start`). Keys we do not use are
/// ignored; keys that are missing take Stable Diffusion 1.5's values, which are also the
/// defaults of `SchedulerConfiguration()`:
///
/// ```json
/// {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
///  "beta_schedule": "scaled_linear", "steps_offset": 1, "set_alpha_to_one": false,
///  "skip_prk_steps": true, "clip_sample": false}
/// ```
///
/// (SD 1.5's file names no `timestep_spacing`; its PNDM scheduler's default, "leading", is what
/// `from_config` hands on to the other samplers, so that is ours.) Options specific to one sampler,
/// such as DPM-Solver's `solver_order`, are fixed by the sampler type, not read from here.
///
/// ```swift
/// let data = try Data(contentsOf: folder.appendingPathComponent("scheduler/scheduler_config.json"))
/// let configuration = try JSONDecoder().decode(SchedulerConfiguration.self, from: data)
/// ```
public struct SchedulerConfiguration: Codable, Equatable, Sendable {
    /// How β grows over the training steps.
    public enum BetaSchedule: String, Codable, CaseIterable, Sendable {
        case scaledLinear = "scaled_linear", linear, squaredCosine = "squaredcos_cap_v2"
    }
    /// What the UNet predicts. Only `.epsilon` (the noise) is implemented by our samplers.
    public enum PredictionType: String, Codable, CaseIterable, Sendable {
        case epsilon, vPrediction = "v_prediction", sample
    }
    /// How the sampling timesteps are picked from 0..<numTrainTimesteps (see `TimestepSpacing.swift`).
    public enum TimestepSpacing: String, Codable, CaseIterable, Sendable {
        case leading, linspace, trailing
    }

    /// `num_train_timesteps`: T, the number of noise levels the model was trained on.
    public var numTrainTimesteps = 1000
    /// `beta_start`: β at t = 0.
    public var betaStart = 0.00085
    /// `beta_end`: β at t = T − 1.
    public var betaEnd = 0.012
    /// `beta_schedule`
    public var betaSchedule = BetaSchedule.scaledLinear
    /// `steps_offset`: added to every "leading" timestep (SD 1.5: 1, so 50 steps end at t = 1).
    public var stepsOffset = 1
    /// `set_alpha_to_one`: DDIM's and PNDM's last step goes to ᾱ = 1 (true) or to ᾱ_0 (false).
    public var setAlphaToOne = false
    /// `skip_prk_steps`: PNDM starts with linear multistep (PLMS) steps only. We implement only true.
    public var skipPrkSteps = true
    /// `clip_sample`: DDIM clamps its x0 estimate to ±`clipSampleRange` (false for latents).
    public var clipSample = false
    /// `clip_sample_range`
    public var clipSampleRange = 1.0
    /// `prediction_type`
    public var predictionType = PredictionType.epsilon
    /// `timestep_spacing`
    public var timestepSpacing = TimestepSpacing.leading {
        didSet { timestepSpacingIsExplicit = true }
    }
    /// Whether `timestep_spacing` was given (in the JSON or set in code). SD 1.5's published
    /// config does not give it, and then diffusers lets every sampler use its own default:
    /// "leading" for DDIM and PNDM, "linspace" for Euler and DPM-Solver (`SchedulerKind.makeScheduler`
    /// does the same).
    public private(set) var timestepSpacingIsExplicit = false

    public init() {}

    /// Stable Diffusion 1.5's configuration.
    public static let sd15 = SchedulerConfiguration()

    enum CodingKeys: String, CodingKey {
        case numTrainTimesteps = "num_train_timesteps", betaStart = "beta_start", betaEnd = "beta_end"
        case betaSchedule = "beta_schedule", stepsOffset = "steps_offset", setAlphaToOne = "set_alpha_to_one"
        case skipPrkSteps = "skip_prk_steps", clipSample = "clip_sample", clipSampleRange = "clip_sample_range"
        case predictionType = "prediction_type", timestepSpacing = "timestep_spacing"
        case trainedBetas = "trained_betas"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        // Enum values are read as strings first, so an unknown one gets a clear message.
        func choice<E: RawRepresentable & CaseIterable>(_ key: CodingKeys, _ fallback: E) throws -> E
        where E.RawValue == String {
            guard let raw = try c.decodeIfPresent(String.self, forKey: key) else { return fallback }
            guard let parsed = E(rawValue: raw) else {
                throw SchedulerError.unsupportedSetting(key: key.rawValue, value: raw,
                                                        supported: E.allCases.map(\.rawValue))
            }
            return parsed
        }
        if try c.decodeIfPresent([Double].self, forKey: .trainedBetas) != nil {
            throw SchedulerError.trainedBetasNotSupported
        }
        let defaults = SchedulerConfiguration.sd15
        numTrainTimesteps = try value(.numTrainTimesteps, defaults.numTrainTimesteps)
        betaStart = try value(.betaStart, defaults.betaStart)
        betaEnd = try value(.betaEnd, defaults.betaEnd)
        betaSchedule = try choice(.betaSchedule, defaults.betaSchedule)
        stepsOffset = try value(.stepsOffset, defaults.stepsOffset)
        setAlphaToOne = try value(.setAlphaToOne, defaults.setAlphaToOne)
        skipPrkSteps = try value(.skipPrkSteps, defaults.skipPrkSteps)
        clipSample = try value(.clipSample, defaults.clipSample)
        clipSampleRange = try value(.clipSampleRange, defaults.clipSampleRange)
        predictionType = try choice(.predictionType, defaults.predictionType)
        timestepSpacing = try choice(.timestepSpacing, defaults.timestepSpacing)
        timestepSpacingIsExplicit = c.contains(.timestepSpacing)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(numTrainTimesteps, forKey: .numTrainTimesteps)
        try c.encode(betaStart, forKey: .betaStart)
        try c.encode(betaEnd, forKey: .betaEnd)
        try c.encode(betaSchedule, forKey: .betaSchedule)
        try c.encode(stepsOffset, forKey: .stepsOffset)
        try c.encode(setAlphaToOne, forKey: .setAlphaToOne)
        try c.encode(skipPrkSteps, forKey: .skipPrkSteps)
        try c.encode(clipSample, forKey: .clipSample)
        try c.encode(clipSampleRange, forKey: .clipSampleRange)
        try c.encode(predictionType, forKey: .predictionType)
        // Left out unless given, as SD 1.5's file does: each sampler then keeps its own default.
        if timestepSpacingIsExplicit { try c.encode(timestepSpacing, forKey: .timestepSpacing) }
    }

    /// Throws unless our samplers can run this configuration: ε-prediction and a step count
    /// between 1 and T.
    public func checkSupported(steps: Int) throws {
        guard predictionType == .epsilon else {
            throw SchedulerError.unsupportedPredictionType(predictionType.rawValue)
        }
        guard (2...100_000).contains(numTrainTimesteps) else {
            throw SchedulerError.unsupportedSetting(key: "num_train_timesteps", value: "\(numTrainTimesteps)",
                                                    supported: ["2 to 100000"])
        }
        guard (1...numTrainTimesteps).contains(steps) else {
            throw SchedulerError.invalidStepCount(steps, trainingSteps: numTrainTimesteps)
        }
    }

    /// ᾱ_t for t = 0..<T in float32, as diffusers computes it (see `NoiseSchedule.float32`).
    public func alphasCumprod() -> [Float] {
        let kind: NoiseSchedule.Kind
        switch betaSchedule {
        case .scaledLinear: kind = .scaledLinear
        case .linear: kind = .linear
        case .squaredCosine: kind = .cosine
        }
        return NoiseSchedule.float32(kind, trainingSteps: numTrainTimesteps,
                                     betaStart: betaStart, betaEnd: betaEnd).alphasCumprod
    }
}
