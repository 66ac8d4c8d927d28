/// What can go wrong when setting up a sampler: a configuration we do not implement, or a step
/// count or img2img strength that gives no usable schedule.
public enum SchedulerError: Error, Equatable, CustomStringConvertible {
    /// A `scheduler_config.json` value we do not implement (key, value, the values we accept).
    case unsupportedSetting(key: String, value: String, supported: [String])
    /// `prediction_type` other than "epsilon": the model predicts something other than the noise.
    case unsupportedPredictionType(String)
    /// `trained_betas` is set: an explicit β list instead of a named schedule.
    case trainedBetasNotSupported
    /// Fewer than one step, or more than the model was trained with.
    case invalidStepCount(Int, trainingSteps: Int)
    /// The spacing rule produced a timestep outside `0..<trainingSteps` for this step count.
    case timestepOutOfRange(steps: Int, timestep: Int, spacing: String)
    /// img2img strength outside [0, 1].
    case invalidStrength(Double)
    /// img2img strength so low that no denoising step is left.
    case noStepsLeft(steps: Int, strength: Double)
    /// LCM: more steps than the timestep grid the model was distilled on.
    case tooManyConsistencySteps(Int, originalSteps: Int)

    public var description: String {
        switch self {
        case let .unsupportedSetting(key, value, supported):
            return "scheduler setting \(key) = \"\(value)\" is not supported (supported: "
                + supported.map { "\"\($0)\"" }.joined(separator: ", ") + ")"
        case let .unsupportedPredictionType(type):
            return "prediction_type \"\(type)\" is not supported: these samplers expect a UNet that "
                + "predicts the added noise (\"epsilon\"), as Stable Diffusion 1.x does; \"v_prediction\" "
                + "models such as SD 2.x 768-v need a different conversion to x0"
        case .trainedBetasNotSupported:
            return "trained_betas is not supported: use beta_schedule with beta_start and beta_end"
        case let .invalidStepCount(steps, trainingSteps):
            return "\(steps) sampling steps: choose between 1 and \(trainingSteps) "
                + "(the number of noise levels the model was trained on)"
        case let .timestepOutOfRange(steps, timestep, spacing):
            return "timestep_spacing \"\(spacing)\" with \(steps) steps gives timestep \(timestep), outside "
                + "the trained range (diffusers computes the same schedule); choose another step count"
        case let .invalidStrength(strength):
            return "img2img strength \(strength) must be between 0 and 1"
        case let .tooManyConsistencySteps(steps, originalSteps):
            return "lcm takes at most \(originalSteps) steps (the timestep grid its model was distilled on), got \(steps); it is made for 2 to 8"
        case let .noStepsLeft(steps, strength):
            return "img2img strength \(strength) with \(steps) steps leaves no step to run "
                + "(int(steps × strength) = 0); raise the strength or the step count"
        }
    }
}
