import Foundation

/// Which implementation runs every tensor operation: the plain loops of `Reference` or the fast
/// kernels of `Fast`.
///
/// Every operation the networks call (`Tensor+Operations.swift`) exists twice. `reference` is the
/// formula written as loops, to be read and trusted; `fast` gives the same numbers, up to the
/// order in which floats are added, one to two orders of magnitude sooner. The choice is made in
/// one place for the whole process, so a student can run all of Stable Diffusion on the loops
/// they have read:
///
/// ```sh
/// SD_KERNELS=reference sd generate --prompt "a red circle" --output circle.png
/// sd generate --kernels reference --prompt "a red circle" --output circle.png   # the same
/// ```
///
/// In code, `Kernels.using(_:_:)` sets it for one piece of work (and for that task only, so tests
/// running side by side do not see each other's choice), and `Kernels.counting(_:)` says which
/// kernels really ran:
///
/// ```swift
/// let (y, tally) = Kernels.counting { Kernels.using(.reference) { x.conv2d(weight: w, bias: b) } }
/// print(tally.calls(.reference))    // 1
/// ```
public enum Kernels: String, CaseIterable, Sendable {
    /// Cache-blocked, vectorised, multi-core kernels (`Sources/TensorCore/Fast/`).
    case fast
    /// Plain loops, one per formula (`Sources/TensorCore/Reference/`).
    case reference

    /// The kernels operations use now: those of the innermost `using(_:_:)`, else `processDefault`.
    public static var current: Kernels { scoped ?? processDefault }

    /// The choice for the whole process: `SD_KERNELS` when the program starts (`fast` if unset),
    /// or what a command-line `--kernels` option sets.
    nonisolated(unsafe) public static var processDefault: Kernels = (try? fromEnvironment()) ?? .fast

    /// `SD_KERNELS` from the environment: nil when unset, an error naming the value when it is
    /// neither `fast` nor `reference`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Kernels? {
        guard let text = environment["SD_KERNELS"], !text.isEmpty else { return nil }
        guard let kernels = Kernels(rawValue: text.lowercased()) else {
            throw KernelsError.unknown(text, source: "SD_KERNELS")
        }
        return kernels
    }

    /// Runs `body` with `kernels` for every operation it calls on this task.
    public static func using<Result>(_ kernels: Kernels, _ body: () throws -> Result) rethrows -> Result {
        try $scoped.withValue(kernels, operation: body)
    }

    /// Runs `body` and counts the operations it ran, per implementation.
    public static func counting<Result>(_ body: () throws -> Result) rethrows -> (Result, KernelTally) {
        let tally = KernelTally()
        let result = try $tally.withValue(tally, operation: body)
        return (result, tally)
    }

    /// A choice made for one piece of work by `using(_:_:)`.
    @TaskLocal static var scoped: Kernels?
    /// Where `counting(_:)` records the operations of its piece of work.
    @TaskLocal static var tally: KernelTally?

    /// Runs one operation on the current kernels: the heart of the switch. `name` is how the
    /// operation is counted and profiled.
    @inline(__always)
    static func run<Result>(_ name: StaticString, reference: () -> Result, fast: () -> Result) -> Result {
        let kernels = current
        tally?.record(name, kernels)
        switch kernels {
        case .reference: return Profiler.measure("reference: \(name)", reference)
        case .fast:
            MemoryHints.applyOnce()
            return fast()
        }
    }
}

extension Kernels {
    /// Runs an operation that has only its plain version so far, whatever the switch says, and
    /// counts it as such (a fast-kernels tally then reads "mixed", which is the truth).
    static func runPlain<Result>(_ name: StaticString, _ body: () -> Result) -> Result {
        tally?.record(name, .reference)
        return Profiler.measure("reference: \(name)", body)
    }
}

/// A `--kernels` or `SD_KERNELS` value that names no implementation.
public enum KernelsError: Error, CustomStringConvertible {
    case unknown(String, source: String)

    public var description: String {
        switch self {
        case .unknown(let text, let source):
            return "\(source): '\(text)' is not a kind of kernels; use fast or reference"
        }
    }
}

/// How many operations ran on each implementation, and which (see `Kernels.counting(_:)`).
public final class KernelTally: @unchecked Sendable {
    private let lock = NSLock()
    private var perKernels: [Kernels: Int] = [:]
    private var perOperation: [String: Int] = [:]

    /// Operations that ran on `kernels`.
    public func calls(_ kernels: Kernels) -> Int { lock.withLock { perKernels[kernels, default: 0] } }

    /// How often each operation ran, by name (`"conv2d"`, `"attention"`, ...).
    public var operations: [String: Int] { lock.withLock { perOperation } }

    /// One line for a stage report: `reference (plain loops): 6499 operations`, `fast: 6499
    /// operations`, or, if both ran, how many on each.
    public var summary: String {
        let plain = calls(.reference), fast = calls(.fast)
        switch (plain, fast) {
        case (_, 0): return "reference (plain loops): \(plain) operations"
        case (0, _): return "fast: \(fast) operations"
        default: return "mixed: \(plain) operations on the plain loops, \(fast) on the fast kernels"
        }
    }

    func record(_ name: StaticString, _ kernels: Kernels) {
        lock.withLock {
            perKernels[kernels, default: 0] += 1
            perOperation["\(name)", default: 0] += 1
        }
    }
}
