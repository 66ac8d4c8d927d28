/// A problem a lesson reports to the user in one sentence, then exits with a non-zero status.
///
/// Lessons throw it for bad input (a missing image, a timestep out of range, an output folder that
/// cannot be created); the argument parser prints the message and exits with code 1.
public struct LessonError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
