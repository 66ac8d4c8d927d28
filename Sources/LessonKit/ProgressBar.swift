import Foundation

/// A one-line progress bar on standard error: `[#####.....] 12/25 t=521  0:41 elapsed, ETA 0:44`.
/// In a terminal it redraws in place; otherwise (a log file, a pipe) it prints a line for the first
/// and last steps and each 5% of the way between, so a 3,200-step training log has 21 lines, not 3,200.
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
    /// The last twentieth of the way that got a line (when not redrawing in place).
    private var lastTwentieth = -1

    public init(total: Int) { self.total = total }

    public func update(_ done: Int, total newTotal: Int, detail: String) {
        total = newTotal
        if !interactive {
            let twentieth = total > 0 ? 20 * done / total : 0
            guard done <= 1 || done >= total || twentieth > lastTwentieth else { return }
            lastTwentieth = twentieth
        }
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
