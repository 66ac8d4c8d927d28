import ArgumentParser
import TensorCore

extension Kernels: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.lowercased()) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

/// The `--kernels fast|reference` option of `sd generate` and of every lesson: which implementation
/// runs the tensor operations (see `Kernels`). Without it, `SD_KERNELS` decides, else `fast`.
///
/// Its `validate()` makes the choice for the whole process, so a command only declares it:
///
/// ```swift
/// @OptionGroup var kernelsOption: KernelsOption
/// ```
public struct KernelsOption: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Tensor kernels: fast, or reference (the plain loops of Sources/TensorCore/Reference: the same numbers up to rounding, much slower). Default: $SD_KERNELS, else fast.",
        valueName: "kernels"))
    public var kernels: Kernels?

    public init() {}

    /// The kernels chosen by the option or the environment.
    public var chosen: Kernels {
        get throws { try kernels ?? Kernels.fromEnvironment() ?? .fast }
    }

    public mutating func validate() throws {
        do {
            Kernels.processDefault = try chosen
            // SD_CPU, read once by the fast kernels: a bad value is named here, before any work.
            _ = try InstructionSet.fromEnvironment()
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// A line for a report: which kernels ran, how many operations on each, and the instruction
    /// set of the fast ones.
    public static func report(_ tally: KernelTally) -> String {
        "kernels: " + tally.summary + (tally.calls(.fast) > 0 ? ", on \(InstructionSet.active.summary)" : "")
    }
}
