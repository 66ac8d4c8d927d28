import TensorCore

/// One entry of the UNet's `up_blocks`: a level with attention or without, as `up_block_types`
/// in the configuration says.
public enum UNetUpBlock: Sendable {
    case crossAttention(CrossAttnUpBlock2D)   // "CrossAttnUpBlock2D"
    case plain(UpBlock2D)                     // "UpBlock2D"

    /// Loads `up_blocks.<level>` as the type the configuration names.
    public init(_ weights: Weights, configuration c: UNetConfiguration, level: Int) throws {
        switch c.upBlockTypes[level] {
        case "CrossAttnUpBlock2D":
            self = .crossAttention(try CrossAttnUpBlock2D(weights, configuration: c, level: level))
        case "UpBlock2D":
            self = .plain(try UpBlock2D(weights, configuration: c, level: level))
        case let other:
            throw UNetConfigurationError.unsupported(key: "up_block_types", value: other,
                                                     supported: "CrossAttnUpBlock2D, UpBlock2D")
        }
    }

    /// How many skip tensors the block consumes: one per ResNet.
    public var resnetCount: Int {
        switch self {
        case .crossAttention(let block): return block.resnets.count
        case .plain(let block): return block.resnets.count
        }
    }

    /// The block's output (see the two block types).
    public func callAsFunction(_ x: Tensor, skips: [Tensor], timeEmbedding: Tensor, context: Tensor,
                               upsampleSize: (height: Int, width: Int)?,
                               observer: CrossAttentionObserver?) -> Tensor {
        switch self {
        case .crossAttention(let block):
            return block(x, skips: skips, timeEmbedding: timeEmbedding, context: context,
                         upsampleSize: upsampleSize, observer: observer)
        case .plain(let block):
            return block(x, skips: skips, timeEmbedding: timeEmbedding, upsampleSize: upsampleSize)
        }
    }
}
