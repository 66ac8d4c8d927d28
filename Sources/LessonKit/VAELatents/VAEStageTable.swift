import StableDiffusion

/// Every stage of the VAE's encoder and decoder with its output shape and cost, from the
/// architecture alone (no weights).
public struct VAEStageTable: Sendable {
    /// One stage: which network, its name, its output `(batch, channels, height, width)` and cost.
    public struct Row: Sendable, Equatable {
        /// "encoder" or "decoder".
        public let network: String
        /// The stage's name in the checkpoint, such as "encoder.down_blocks.0".
        public let name: String
        /// The output shape.
        public let shape: [Int]
        /// The numbers in the output: the product of the shape.
        public var numbers: Int { shape.reduce(1, *) }
        /// The stage's arithmetic in GFLOP.
        public let gflop: Double
    }

    /// The encoder's stages, then the decoder's.
    public let rows: [Row]
    /// FLOPs of one encode and one decode: the sums over each network's stages.
    public let encodeFlops, decodeFlops: Int

    /// The stages for a `height` x `width` picture.
    public init(configuration: VAEConfiguration, height: Int, width: Int) throws {
        let (encoder, decoder) = try AutoencoderKL.stages(configuration: configuration, height: height, width: width)
        rows = [("encoder", encoder), ("decoder", decoder)].flatMap { network, stages in
            stages.map { Row(network: network, name: $0.name, shape: $0.shape, gflop: Double($0.flops) / 1e9) }
        }
        encodeFlops = encoder.reduce(0) { $0 + $1.flops }
        decodeFlops = decoder.reduce(0) { $0 + $1.flops }
    }

    /// The stage with the biggest output (the first of equals).
    public var widest: Row {
        rows.max { $0.numbers < $1.numbers }!
    }
}
