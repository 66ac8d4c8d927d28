import StableDiffusion

/// A UNet's layout read from its configuration: the down path, the middle, the up path, at which
/// resolution each works, how many ResNets and transformers (self- then cross-attention) each has,
/// and the shape of its activation, for lesson 4's anatomy diagram. True for SD 1.5 and for any
/// other configuration the loader accepts.
///
/// ```swift
/// let anatomy = UNetAnatomy(configuration: .sd15, latentSide: 64, batch: 2)
/// anatomy.down[0].shape        // [2, 320, 64, 64]
/// ```
public struct UNetAnatomy: Sendable {
    /// One block of the UNet.
    public struct Block: Sendable, Equatable {
        /// Its checkpoint name: `down_blocks.0`, `mid_block`, `up_blocks.3`.
        public let name: String
        /// The side of the latent grid it works at, and its channels.
        public let side, channels: Int
        public let resnets: Int
        /// Transformers (each: self-attention, cross-attention to the text, feed-forward); 0 for plain blocks.
        public let transformers: Int
        public let heads: Int
        /// "downsample" or "upsample" at its end, if it changes the resolution.
        public let resampler: String?
        public let batch: Int

        /// The activation it hands on: (N, C, side, side).
        public var shape: [Int] { [batch, channels, side, side] }
    }

    public let down: [Block], middle: Block, up: [Block]
    /// The text vectors cross-attention reads, (N, 77, D), and the timestep embedding's width.
    public let contextShape: [Int], timeEmbeddingWidth: Int, sinusoidWidth: Int

    public init(configuration c: UNetConfiguration, latentSide: Int, batch: Int) {
        let levels = c.blockOutChannels.count
        down = (0..<levels).map { i in
            Block(name: "down_blocks.\(i)", side: latentSide >> i, channels: c.blockOutChannels[i], resnets: c.layersPerBlock,
                  transformers: c.downBlockTypes[i] == "CrossAttnDownBlock2D" ? c.layersPerBlock * c.transformerLayersPerBlock : 0,
                  heads: c.heads(block: i), resampler: i < levels - 1 ? "downsample" : nil, batch: batch)
        }
        let bottom = c.blockOutChannels[levels - 1]
        middle = Block(name: "mid_block", side: latentSide >> (levels - 1), channels: bottom, resnets: 2,
                       transformers: c.transformerLayersPerBlock, heads: c.heads(block: levels - 1), resampler: nil, batch: batch)
        up = (0..<levels).map { i in
            let level = levels - 1 - i                      // up block i works at down level `levels − 1 − i`
            return Block(name: "up_blocks.\(i)", side: latentSide >> level, channels: c.blockOutChannels[level],
                         resnets: c.layersPerBlock + 1,
                         transformers: c.upBlockTypes[i] == "CrossAttnUpBlock2D" ? (c.layersPerBlock + 1) * c.transformerLayersPerBlock : 0,
                         heads: c.heads(block: level), resampler: i < levels - 1 ? "upsample" : nil, batch: batch)
        }
        contextShape = [batch, CLIPTokenizer.contextLength, c.crossAttentionDim]
        timeEmbeddingWidth = c.timeEmbeddingDim
        sinusoidWidth = c.blockOutChannels[0]
    }

    /// Every block in the order the data flows through them.
    public var blocks: [Block] { down + [middle] + up }

    /// One line about a block: "2 ResNets + 2 transformers (8 heads), then downsample".
    public static func summary(_ block: Block) -> String {
        var text = "\(block.resnets) ResNet\(block.resnets == 1 ? "" : "s")"
        if block.transformers > 0 {
            text += " + \(block.transformers) transformer\(block.transformers == 1 ? "" : "s") (\(block.heads) heads)"
        }
        if let resampler = block.resampler { text += ", then \(resampler)" }
        return text
    }
}
