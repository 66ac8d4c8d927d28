import Foundation

/// A one-line progress bar on standard error: `[#####.....] 12/25 t=521  0:41 elapsed, ETA 0:44`.
/// In a terminal it redraws in place; otherwise it prints one line per step.
///
/// ```swift
/// let bar = ProgressBar(total: 25)
/// for step in 1...25 { bar.update(step, total: 25, detail: "t=\(999 - 40 * step)") }
/// bar.finish()
/// ```
public final class ProgressBar {
    private let start = Date()
    private var total: Int
    private let interactive = isatty(STDERR_FILENO) == 1

    public init(total: Int) { self.total = total }

    public func update(_ done: Int, total newTotal: Int, detail: String) {
        total = newTotal
        let elapsed = Date().timeIntervalSince(start)
        let remaining = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let width = 30, filled = total > 0 ? width * done / total : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = "[\(bar)] \(done)/\(total) \(detail)  \(clock(elapsed)) elapsed, ETA \(clock(remaining))"
        FileHandle.standardError.write(Data(((interactive ? "\r" : "") + line + (interactive ? "" : "\n")).utf8))
    }

    public func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d", s / 60, s % 60)
    }
}
