import Foundation
import FrameExport
import TensorCore

/// Finds the picture a lesson works on: the user's `--image`, or the built-in example.
public enum InputPicture {
    /// The built-in picture's file, relative to the project folder (the lessons' working directory).
    public static let examplePath = "Examples/hills.png"

    /// Loads `path` as RGB, or, when `path` is nil, `Examples/hills.png` if it is there and
    /// otherwise the same picture drawn by `ExamplePictures.hills`.
    ///
    /// - Returns: the image and a sentence saying where it came from.
    /// - Throws: `LessonError` with the reader's message for a missing, unreadable, empty or
    ///   unsupported file.
    public static func load(_ path: String?) throws -> (image: RGBImage, source: String) {
        if let path {
            do {
                return (try RGBImage(contentsOfFile: path), "'\(path)'")
            } catch {
                throw LessonError("cannot use --image: \(error)")
            }
        }
        if FileManager.default.fileExists(atPath: examplePath),
           let image = try? RGBImage(contentsOfFile: examplePath) {
            return (image, "the built-in picture \(examplePath), drawn by code (ExamplePictures.hills)")
        }
        return (RGBImage(tensor: ExamplePictures.hills()), "the built-in picture, drawn by code (ExamplePictures.hills)")
    }
}
