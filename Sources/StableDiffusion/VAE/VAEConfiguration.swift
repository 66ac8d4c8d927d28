import Foundation

/// The numbers that shape the VAE, read from a diffusers `vae/config.json`.
///
/// The VAE (variational autoencoder) of Stable Diffusion squeezes an image into a latent 8 times
/// smaller on each side with 4 channels, and blows such a latent back up into an image. Its
/// architecture is fixed by a handful of numbers; SD 1.x's `vae/config.json` says:
///
/// ```json
/// { "in_channels": 3, "out_channels": 3, "latent_channels": 4,
///   "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
///   "norm_num_groups": 32, "scaling_factor": 0.18215, "sample_size": 512, ... }
/// ```
///
/// Keys missing from the file take diffusers' defaults for `AutoencoderKL`; keys this project has
/// no use for (`_class_name`, `force_upcast`, ...) are ignored.
///
/// ```swift
/// let json = try Data(contentsOf: folder.appendingPathComponent("vae/config.json"))
/// let configuration = try JSONDecoder().decode(VAEConfiguration.self, from: json)
/// ```
public struct VAEConfiguration: Codable, Equatable, Sendable {
    /// Colour channels of the image: 3 (RGB).
    public var inChannels: Int
    /// Colour channels the decoder produces: 3.
    public var outChannels: Int
    /// Channels of the latent: 4 in SD 1.x.
    public var latentChannels: Int
    /// Channels at each resolution level of the encoder, from the image side down
    /// (the decoder walks the same list backwards). One level per entry; every level but the
    /// last halves the height and width, so 4 levels make the latent 2³ = 8 times smaller.
    public var blockOutChannels: [Int]
    /// Residual blocks per encoder level; decoder levels have one more.
    public var layersPerBlock: Int
    /// GroupNorm groups everywhere in the VAE (32 in SD 1.x).
    public var normNumGroups: Int
    /// The activation after every GroupNorm; only "silu" exists in SD 1.x.
    public var actFn: String
    /// The encoder's block types; SD 1.x has four "DownEncoderBlock2D".
    public var downBlockTypes: [String]
    /// The decoder's block types; SD 1.x has four "UpDecoderBlock2D".
    public var upBlockTypes: [String]
    /// The multiplier that brings latents to roughly unit variance: the diffusion model sees
    /// `scaling_factor · z`. 0.18215 for SD 1.x (its inverse, 5.49, is the latents' typical spread).
    public var scalingFactor: Float
    /// The image size the VAE was trained at, in pixels (512). diffusers takes its tile size for
    /// tiled decoding from it (512 pixels = 64 latents, the default of `decodeTiled`).
    public var sampleSize: Int
    /// Whether a 1x1 convolution follows the encoder (`quant_conv`) and precedes the decoder
    /// (`post_quant_conv`); true in SD 1.x.
    public var useQuantConv: Bool
    public var usePostQuantConv: Bool
    /// Whether the middle blocks have their self-attention layer; true in SD 1.x.
    public var midBlockAddAttention: Bool

    public enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels"
        case outChannels = "out_channels"
        case latentChannels = "latent_channels"
        case blockOutChannels = "block_out_channels"
        case layersPerBlock = "layers_per_block"
        case normNumGroups = "norm_num_groups"
        case actFn = "act_fn"
        case downBlockTypes = "down_block_types"
        case upBlockTypes = "up_block_types"
        case scalingFactor = "scaling_factor"
        case sampleSize = "sample_size"
        case useQuantConv = "use_quant_conv"
        case usePostQuantConv = "use_post_quant_conv"
        case midBlockAddAttention = "mid_block_add_attention"
    }

    public init(inChannels: Int = 3, outChannels: Int = 3, latentChannels: Int = 4,
                blockOutChannels: [Int], layersPerBlock: Int, normNumGroups: Int = 32,
                actFn: String = "silu", downBlockTypes: [String]? = nil, upBlockTypes: [String]? = nil,
                scalingFactor: Float = 0.18215, sampleSize: Int = 512,
                useQuantConv: Bool = true, usePostQuantConv: Bool = true, midBlockAddAttention: Bool = true) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.latentChannels = latentChannels
        self.blockOutChannels = blockOutChannels
        self.layersPerBlock = layersPerBlock
        self.normNumGroups = normNumGroups
        self.actFn = actFn
        self.downBlockTypes = downBlockTypes ?? Array(repeating: "DownEncoderBlock2D", count: blockOutChannels.count)
        self.upBlockTypes = upBlockTypes ?? Array(repeating: "UpDecoderBlock2D", count: blockOutChannels.count)
        self.scalingFactor = scalingFactor
        self.sampleSize = sampleSize
        self.useQuantConv = useQuantConv
        self.usePostQuantConv = usePostQuantConv
        self.midBlockAddAttention = midBlockAddAttention
    }

    /// Stable Diffusion 1.x's VAE (1.4, 1.5 and their fine-tunes; about 84M parameters).
    public static let sd15 = VAEConfiguration(blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2)

    /// Reads a diffusers config; absent keys take `AutoencoderKL`'s defaults.
    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Defaults as in diffusers' AutoencoderKL.__init__.
        let channels = try c.decodeIfPresent([Int].self, forKey: .blockOutChannels) ?? [64]
        self.init(
            inChannels: try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? 3,
            outChannels: try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? 3,
            latentChannels: try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? 4,
            blockOutChannels: channels,
            layersPerBlock: try c.decodeIfPresent(Int.self, forKey: .layersPerBlock) ?? 1,
            normNumGroups: try c.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? 32,
            actFn: try c.decodeIfPresent(String.self, forKey: .actFn) ?? "silu",
            downBlockTypes: try c.decodeIfPresent([String].self, forKey: .downBlockTypes),
            upBlockTypes: try c.decodeIfPresent([String].self, forKey: .upBlockTypes),
            scalingFactor: try c.decodeIfPresent(Float.self, forKey: .scalingFactor) ?? 0.18215,
            sampleSize: try Self.decodeSampleSize(c) ?? 32,
            useQuantConv: try c.decodeIfPresent(Bool.self, forKey: .useQuantConv) ?? true,
            usePostQuantConv: try c.decodeIfPresent(Bool.self, forKey: .usePostQuantConv) ?? true,
            midBlockAddAttention: try c.decodeIfPresent(Bool.self, forKey: .midBlockAddAttention) ?? true)
    }

    /// `sample_size` is a number in SD 1.x, but diffusers also allows `[height, width]`;
    /// like diffusers' tiling, we keep the first entry.
    private static func decodeSampleSize(_ c: KeyedDecodingContainer<CodingKeys>) throws -> Int? {
        if let size = try? c.decodeIfPresent(Int.self, forKey: .sampleSize) { return size }
        return try c.decodeIfPresent([Int].self, forKey: .sampleSize)?.first
    }

    /// How many times smaller the latent is than the image on each side: 2^(levels − 1) = 8.
    public var downsamplingFactor: Int { 1 << max(0, blockOutChannels.count - 1) }

    /// Throws `VAEError.unsupportedConfiguration` unless this describes an SD 1.x-style VAE that
    /// the types of this folder can build.
    public func validate() throws {
        func fail(_ reason: String) -> VAEError { .unsupportedConfiguration(reason) }
        guard !blockOutChannels.isEmpty else { throw fail("block_out_channels is empty") }
        guard blockOutChannels.count <= 8 else { throw fail("block_out_channels has \(blockOutChannels.count) levels, at most 8 are supported") }
        // Bounded, not only positive: a config file is read before any weight, and an absurd count
        // must be an error rather than an attempt to build it.
        let counts: [(String, Int, ClosedRange<Int>)] = [
            ("in_channels", inChannels, 1...1024), ("out_channels", outChannels, 1...1024),
            ("latent_channels", latentChannels, 1...1024), ("layers_per_block", layersPerBlock, 1...64),
            ("norm_num_groups", normNumGroups, 1...65536),
        ] + blockOutChannels.map { ("block_out_channels", $0, 1...65536) }
        for (name, value, range) in counts where !range.contains(value) {
            throw fail("\(name) = \(value) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        if let bad = blockOutChannels.first(where: { $0 % normNumGroups != 0 }) {
            throw fail("\(bad) channels do not split into norm_num_groups = \(normNumGroups) groups")
        }
        guard actFn == "silu" else { throw fail("act_fn is \"\(actFn)\"; only \"silu\" is supported") }
        guard downBlockTypes == Array(repeating: "DownEncoderBlock2D", count: blockOutChannels.count) else {
            throw fail("down_block_types must be \(blockOutChannels.count) x DownEncoderBlock2D, found \(downBlockTypes)")
        }
        guard upBlockTypes == Array(repeating: "UpDecoderBlock2D", count: blockOutChannels.count) else {
            throw fail("up_block_types must be \(blockOutChannels.count) x UpDecoderBlock2D, found \(upBlockTypes)")
        }
        guard useQuantConv, usePostQuantConv, midBlockAddAttention else {
            throw fail("use_quant_conv, use_post_quant_conv and mid_block_add_attention must be true (as in SD 1.x)")
        }
        guard scalingFactor.isFinite, scalingFactor > 0 else {
            throw fail("scaling_factor must be a positive number, found \(scalingFactor)")
        }
    }
}
