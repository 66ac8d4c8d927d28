/// The samplers we implement, by their command-line names.
///
/// ```swift
/// let kind = SchedulerKind(rawValue: "dpmpp-2m-karras")!
/// var scheduler = try kind.makeScheduler(steps: 25)
/// ```
public enum SchedulerKind: String, CaseIterable, Sendable {
    case ddim
    case pndm
    case euler
    case eulerAncestral = "euler-a"
    case dpmSolverMultistepKarras = "dpmpp-2m-karras"
    case lcm

    /// One line for `--help` and lesson narration.
    public var summary: String {
        switch self {
        case .ddim: return "DDIM: deterministic jumps along the predicted noise direction"
        case .pndm: return "PNDM (PLMS): 4th-order linear multistep, SD 1.5's default sampler"
        case .euler: return "Euler: first-order steps of the probability-flow ODE in σ"
        case .eulerAncestral: return "Euler ancestral: Euler steps that add fresh noise each step"
        case .dpmSolverMultistepKarras: return "DPM++ 2M Karras: second-order multistep, Karras noise levels"
        case .lcm: return "LCM: consistency jumps to the clean latent, 2-8 steps (with an LCM model or the LCM-LoRA)"
        }
    }

    /// The spacing diffusers' class uses when the configuration does not name one.
    public var defaultTimestepSpacing: SchedulerConfiguration.TimestepSpacing {
        switch self {
        case .ddim, .pndm, .lcm: return .leading   // LCM ignores the spacing: it has its own grid
        case .euler, .eulerAncestral, .dpmSolverMultistepKarras: return .linspace
        }
    }

    /// A fresh scheduler for `steps` sampling steps (DDIM with η = 0).
    public func makeScheduler(steps: Int, configuration: SchedulerConfiguration = .sd15) throws -> any Scheduler {
        var configuration = configuration
        if !configuration.timestepSpacingIsExplicit { configuration.timestepSpacing = defaultTimestepSpacing }
        switch self {
        case .ddim: return try DDIMScheduler(configuration: configuration, steps: steps)
        case .pndm: return try PNDMScheduler(configuration: configuration, steps: steps)
        case .euler: return try EulerDiscreteScheduler(configuration: configuration, steps: steps)
        case .eulerAncestral: return try EulerAncestralDiscreteScheduler(configuration: configuration, steps: steps)
        case .dpmSolverMultistepKarras:
            return try DPMSolverMultistepScheduler(configuration: configuration, steps: steps)
        case .lcm: return try LCMScheduler(configuration: configuration, steps: steps)
        }
    }
}
