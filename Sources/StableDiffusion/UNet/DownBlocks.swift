import TensorCore

/// One entry of the UNet's `down_blocks`: a level with attention or without, as
/// `down_block_types` in the configuration says.
public enum UNetDownBlock: Sendable {
    case crossAttention(CrossAttnDownBlock2D)   // "CrossAttnDownBlock2D"
    case plain(DownBlock2D)                     // "DownBlock2D"

    /// Loads `down_blocks.<level>` as the type the configuration names.
    public init(_ weights: Weights, configuration c: UNetConfiguration, level: Int) throws {
        switch c.downBlockTypes[level] {
        case "CrossAttnDownBlock2D":
            self = .crossAttention(try CrossAttnDownBlock2D(weights, configuration: c, level: level))
        case "DownBlock2D":
            self = .plain(try DownBlock2D(weights, configuration: c, level: level))
        case let other:
            throw UNetConfigurationError.unsupported(key: "down_block_types", value: other,
                                                     supported: "CrossAttnDownBlock2D, DownBlock2D")
        }
    }

    /// The block's output and its skip tensors (see the two block types).
    public func callAsFunction(_ x: Tensor, timeEmbedding: Tensor, context: Tensor,
                               observer: CrossAttentionObserver?) -> (output: Tensor, skips: [Tensor]) {
        switch self {
        case .crossAttention(let block): return block(x, timeEmbedding: timeEmbedding, context: context, observer: observer)
        case .plain(let block): return block(x, timeEmbedding: timeEmbedding)
        }
    }
}
