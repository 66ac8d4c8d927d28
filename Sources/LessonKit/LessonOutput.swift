import Foundation
import FrameExport

/// The folder a lesson writes into, and the list of what it wrote.
///
/// Every file goes through `FrameExport`'s atomic writers (temporary file, then rename), so a
/// lesson stopped half-way leaves complete files or none. PNGs carry the lesson's parameters in a
/// text chunk, so a picture found later still says how it was made.
public final class LessonOutput {
    /// The folder as the user gave it (relative paths stay relative in messages).
    public let directory: String
    /// Parameters stored in every PNG (`lesson`, `seed`, `schedule`, ...).
    public var parameters: [(String, String)]
    /// The paths of the files written so far, in order; the lesson lists them at the end.
    public private(set) var written: [String] = []

    /// Creates the folder (and its parents) if needed.
    /// - Throws: `LessonError` naming the folder when it cannot be created (a file is in the way,
    ///   no permission).
    public init(_ path: String, parameters: [(String, String)] = []) throws {
        do {
            try ensureDirectory(path)
        } catch {
            throw LessonError("cannot use output folder '\(path)': \(error)")
        }
        directory = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        self.parameters = parameters
    }

    /// Full path of a file in the folder.
    public func path(_ name: String) -> String { directory + "/" + name }

    /// Writes a PNG with the lesson's parameters (plus `extra`) in its text chunk.
    @discardableResult
    public func save(_ image: RGBImage, as name: String, extra: [(String, String)] = []) throws -> String {
        let text = (parameters + extra).map { PNGTextEntry(key: $0.0, value: $0.1) }
        try image.writePNG(to: path(name), text: text)
        return record(name)
    }

    /// Writes an animated GIF.
    @discardableResult
    public func save(_ animation: AnimatedGIF, as name: String) throws -> String {
        try animation.write(to: path(name))
        return record(name)
    }

    /// Writes a text file (CSV, notes).
    @discardableResult
    public func save(text: String, as name: String) throws -> String {
        try AtomicFile.write(text, to: path(name))
        return record(name)
    }

    private func record(_ name: String) -> String {
        let full = path(name)
        if !written.contains(full) { written.append(full) }
        return full
    }

    /// A closing list of everything written, for the narrator to print.
    public var summary: String {
        written.map { "  \($0)" }.joined(separator: "\n")
    }
}
