/// Everything a caller can get wrong when building or running the VAE, each with a message that
/// says what was expected.
public enum VAEError: Error, CustomStringConvertible, Equatable {
    /// The configuration describes a VAE this project cannot build.
    case unsupportedConfiguration(String)
    /// A tensor handed to `encode` or `decode` has the wrong rank or channel count.
    case wrongInputShape(what: String, expected: String, found: [Int])
    /// Image sides must be multiples of the downsampling factor (8 in SD 1.x).
    case sizeNotDivisible(height: Int, width: Int, factor: Int)
    /// Tiled decoding was asked for with a tile or overlap that cannot work.
    case invalidTiling(String)

    public var description: String {
        switch self {
        case .unsupportedConfiguration(let reason):
            return "unsupported VAE configuration: \(reason)"
        case .wrongInputShape(let what, let expected, let found):
            return "\(what) must have shape \(expected), got \(found)"
        case .sizeNotDivisible(let height, let width, let factor):
            return "image size \(height)x\(width) is not a multiple of \(factor) on both sides; "
                + "resize or crop it to, e.g., \(max(factor, height / factor * factor))x\(max(factor, width / factor * factor))"
        case .invalidTiling(let reason):
            return "invalid tiling: \(reason)"
        }
    }
}
