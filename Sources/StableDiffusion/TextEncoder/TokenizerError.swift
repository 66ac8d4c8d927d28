/// Everything that can be wrong with a tokenizer's files, each with a message that names the file.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case missingFile(String)
    case unreadable(String, String)
    case malformed(String, String)
    case unwritable(String, String)
    case missingToken(String, file: String)

    public var description: String {
        switch self {
        case .missingFile(let path):
            return "tokenizer file '\(path)' does not exist"
        case .unreadable(let path, let reason):
            return "cannot read tokenizer file '\(path)': \(reason)"
        case .malformed(let path, let reason):
            return "'\(path)' is not a valid tokenizer file: \(reason)"
        case .unwritable(let path, let reason):
            return "cannot write tokenizer file '\(path)': \(reason)"
        case .missingToken(let token, let path):
            return "the vocabulary '\(path)' has no token '\(token)'"
        }
    }
}
