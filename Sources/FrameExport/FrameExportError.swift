/// Everything that can go wrong while reading or writing images and other files.
///
/// Every case carries the path (or a description of the input) so that the message alone tells the
/// user which file is at fault and why. Messages are meant to be printed as they are:
///
/// ```swift
/// do {
///     let image = try RGBImage(contentsOfFile: "photo.gif")
/// } catch {
///     print(error)   // 'photo.gif' is a GIF image; only PNG and JPEG images can be read
/// }
/// ```
public enum FrameExportError: Error, Equatable, CustomStringConvertible {
    /// Nothing exists at the path.
    case fileNotFound(path: String)
    /// The path exists but could not be read (a directory, no permission, an I/O error).
    case unreadableFile(path: String, reason: String)
    /// The file exists and has no bytes at all.
    case emptyFile(path: String)
    /// The bytes are not a PNG or JPEG. `detected` names what they look like instead.
    case unsupportedFormat(path: String, detected: String)
    /// The file decodes to an image with no pixels.
    case zeroSizeImage(path: String)
    /// The header claims more pixels than this library is willing to allocate.
    case imageTooLarge(path: String, width: Int, height: Int)
    /// The file starts like a PNG or JPEG but is damaged or cut short.
    case corruptImage(path: String, format: String, reason: String)
    /// Writing a file failed; nothing was left behind at `path`.
    case writeFailed(path: String, reason: String)
    /// `ensureDirectory(_:)` could not create a directory.
    case directoryCreationFailed(path: String, reason: String)
    /// An encoder (PNG, JPEG, GIF) rejected the image.
    case encodingFailed(format: String, reason: String)
    /// A function was called with arguments it cannot work with.
    case invalidArgument(String)

    /// The formats `RGBImage(contentsOfFile:)` understands, for error messages.
    static let supportedFormats = "only PNG and JPEG images can be read"

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "cannot read '\(path)': no such file"
        case .unreadableFile(let path, let reason):
            return "cannot read '\(path)': \(reason)"
        case .emptyFile(let path):
            return "'\(path)' is empty (0 bytes), not an image"
        case .unsupportedFormat(let path, let detected):
            return "'\(path)' is \(detected); \(Self.supportedFormats)"
        case .zeroSizeImage(let path):
            return "'\(path)' is an image with zero width or height"
        case .imageTooLarge(let path, let width, let height):
            return "'\(path)' is \(width)x\(height) pixels, larger than the \(RGBImage.maxPixelCount / 1_000_000) megapixel limit"
        case .corruptImage(let path, let format, let reason):
            return "'\(path)' is a corrupt or truncated \(format) file: \(reason)"
        case .writeFailed(let path, let reason):
            return "cannot write '\(path)': \(reason)"
        case .directoryCreationFailed(let path, let reason):
            return "cannot create directory '\(path)': \(reason)"
        case .encodingFailed(let format, let reason):
            return "cannot encode \(format): \(reason)"
        case .invalidArgument(let message):
            return message
        }
    }
}
