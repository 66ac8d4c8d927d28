import Dispatch
import Foundation

/// Where the time goes: an opt-in, per-operation stopwatch for `sd-bench`.
///
/// Heavy operations wrap their work in `Profiler.measure("gemm") { ... }`. When the profiler is
/// off (the default) that is one branch. When on, each category accumulates its *exclusive* time:
/// attention's own time excludes the GEMMs it calls, which are counted under "gemm". Only the
/// calling thread is timed; work an operation spreads over the cores is inside its interval.
public enum Profiler {
    nonisolated(unsafe) public static var isEnabled = false
    nonisolated(unsafe) private static var totals: [String: Double] = [:]
    nonisolated(unsafe) private static var calls: [String: Int] = [:]
    /// Open intervals: category and the time spent in children so far.
    nonisolated(unsafe) private static var stack: [(category: String, children: Double)] = []

    @inline(__always)
    public static func measure<T>(_ category: String, _ body: () throws -> T) rethrows -> T {
        guard isEnabled, Thread.isMainThread else { return try body() }
        stack.append((category, 0))
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let frame = stack.removeLast()
            totals[category, default: 0] += elapsed - frame.children
            calls[category, default: 0] += 1
            if !stack.isEmpty { stack[stack.count - 1].children += elapsed }
        }
        return try body()
    }

    /// Forgets everything measured so far.
    public static func reset() {
        totals = [:]
        calls = [:]
        stack = []
    }

    /// Seconds and call counts per category, largest first.
    public static var report: [(category: String, seconds: Double, calls: Int)] {
        totals.map { ($0.key, $0.value, calls[$0.key] ?? 0) }.sorted { $0.seconds > $1.seconds }
    }
}
