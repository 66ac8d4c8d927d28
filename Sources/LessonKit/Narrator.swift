import Foundation
import TensorCore
import FrameExport

/// Tells a lesson's story in the terminal, one stage at a time.
///
/// Each stage prints a heading, then narration with the numbers that matter, then (in a terminal)
/// waits for Enter so a teacher can talk over it. With `--no-pause`, or when standard input is not
/// a terminal (a pipe, CI, a script), it runs straight through.
///
/// ```swift
/// let narrator = Narrator(pauses: !noPause)
/// narrator.stage("The noise schedule")
/// narrator.say("ᾱ at t = 999 is 0.0047: under half a percent of the signal is left.")
/// narrator.pause()
/// ```
public final class Narrator {
    /// Whether the narrator waits for Enter after each stage (only when asked and in a terminal).
    public let pauses: Bool
    private var stageNumber = 0
    private let width = 92

    /// - Parameter pauses: whether the user asked to pause; it only takes effect when standard
    ///   input is a terminal.
    public init(pauses: Bool) {
        self.pauses = pauses && isatty(STDIN_FILENO) == 1
        // Line by line even into a pipe (`| tee`), so long stages show their progress as it happens.
        setvbuf(stdout, nil, _IOLBF, 0)
    }

    /// The lesson's title, framed.
    public func title(_ text: String, subtitle: String? = nil) {
        let rule = String(repeating: "═", count: min(width, max(text.count, subtitle?.count ?? 0) + 4))
        print(rule)
        print("  " + text)
        if let subtitle { print("  " + subtitle) }
        print(rule)
        if pauses { print("(Press Enter after each stage; run with --no-pause to go straight through.)") }
        if Kernels.current == .reference {
            print("Kernels: reference. Every tensor operation runs on the plain loops of Sources/TensorCore/Reference:")
            print("the same numbers up to rounding, much slower.")
        }
        print()
    }

    /// A numbered stage heading.
    public func stage(_ heading: String) {
        stageNumber += 1
        let text = "Stage \(stageNumber) · \(heading)"
        print("\n" + text)
        print(String(repeating: "─", count: min(width, text.count)))
    }

    /// Narration, word-wrapped to the terminal width. Blank lines separate paragraphs.
    public func say(_ text: String) {
        for paragraph in text.components(separatedBy: "\n") {
            print(Narrator.wrap(paragraph, width: width))
        }
        fflush(stdout)
    }

    /// A table row or formula, printed as is (no wrapping).
    public func show(_ line: String) {
        print("    " + line)
    }

    /// A small true-colour preview of a picture, only when standard output is a terminal (a
    /// redirected log should not fill up with escape codes).
    public func preview(_ image: RGBImage, columns: Int = 40) {
        guard isatty(STDOUT_FILENO) == 1 else { return }
        print(image.terminalPreview(columns: columns))
    }

    /// Waits for Enter when pausing; otherwise does nothing.
    public func pause() {
        guard pauses else { return }
        print("\n  ⏎ Enter to continue", terminator: "")
        fflush(stdout)
        _ = readLine()
    }

    /// Greedy word wrap that keeps a paragraph's leading indentation.
    static func wrap(_ paragraph: String, width: Int) -> String {
        let indent = String(paragraph.prefix { $0 == " " })
        var lines: [String] = []
        var line = indent
        for word in paragraph.split(separator: " ", omittingEmptySubsequences: true) {
            if line.count + word.count + 1 > width && line.count > indent.count {
                lines.append(line)
                line = indent
            }
            line += (line.count > indent.count ? " " : "") + word
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }
}
