/// A training setting or batch that cannot work, named so the message says what to change.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    /// A setting outside what training can use: `.setting("learning rate", "0", "a positive number")`.
    case setting(String, value: String, mustBe: String)
    /// A batch whose tensors do not fit the network or each other.
    case batchShape(String)
    /// A saved training state that cannot be continued: not one, damaged, or of another run.
    case state(String)

    public var description: String {
        switch self {
        case .setting(let name, let value, let requirement):
            return "the \(name) must be \(requirement), got \(value)"
        case .batchShape(let problem):
            return "the training batch does not fit: \(problem)"
        case .state(let problem):
            return "the training state cannot be resumed: \(problem)"
        }
    }
}
