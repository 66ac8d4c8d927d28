/// A problem a lesson reports to the user in one sentence, then exits with a non-zero status.
///
/// Lessons throw it for bad input (a missing image, a timestep out of range, an output folder that
/// cannot be created); the argument parser prints the message and exits with code 1.
public struct LessonError: Error, CustomStringConvertible {
    /// The sentence shown to the user.
    public let description: String
    /// A problem described by `message`, e.g. `LessonError("--image: 'cat.png' does not exist")`.
    public init(_ message: String) { description = message }
}
