import ArgumentParser
import Foundation
import StableDiffusion

// Command-line pieces shared by the lessons and the `sd` tool.

extension SchedulerKind: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

extension NoiseSchedule.Kind: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

/// Reads a `--timesteps` list such as `0,250,500,999`: whole numbers in 0...999, at least one.
public func parseTimesteps(_ text: String) throws -> [Int] {
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard !parts.isEmpty else { throw ValidationError("--timesteps needs at least one timestep") }
    return try parts.map { part in
        guard let t = Int(part) else { throw ValidationError("--timesteps: '\(part)' is not a whole number") }
        guard (0...999).contains(t) else { throw ValidationError("--timesteps: \(t) is out of range; timesteps run from 0 to 999") }
        return t
    }
}
