/// The numbers that define a UNet's architecture, read from a diffusers `unet/config.json`.
///
/// Property names are the JSON keys in camel case (`block_out_channels` → `blockOutChannels`).
/// Keys this type does not know (`_class_name`, `_diffusers_version`, `dropout`, ...) are ignored,
/// and keys a config leaves out take diffusers' defaults, so SD 1.5's short 2022 config and the
/// long ones newer diffusers versions write decode alike:
///
/// ```swift
/// let data = try Data(contentsOf: folder.appendingPathComponent("unet/config.json"))
/// let configuration = try JSONDecoder().decode(UNetConfiguration.self, from: data)
/// try configuration.validate()
/// ```
///
/// The shape of SD 1.x, in channels (`block_out_channels` = 320, 640, 1280, 1280):
///
///     conv_in 4 → 320
///     down_blocks.0  CrossAttnDownBlock2D  320   64x64 → 32x32     (for a 512x512 image)
///     down_blocks.1  CrossAttnDownBlock2D  640   32x32 → 16x16
///     down_blocks.2  CrossAttnDownBlock2D  1280  16x16 → 8x8
///     down_blocks.3  DownBlock2D           1280  8x8   (no attention, no downsampler)
///     mid_block      UNetMidBlock2DCrossAttn 1280 8x8
///     up_blocks.0    UpBlock2D             1280  8x8   → 16x16
///     up_blocks.1    CrossAttnUpBlock2D    1280  16x16 → 32x32
///     up_blocks.2    CrossAttnUpBlock2D    640   32x32 → 64x64
///     up_blocks.3    CrossAttnUpBlock2D    320   64x64 (no upsampler)
///     conv_out 320 → 4
public struct UNetConfiguration: Codable, Equatable, Sendable {
    /// Latent channels in and out: 4 (the VAE's latent space).
    public var inChannels: Int
    public var outChannels: Int
    /// Channels of each resolution level, finest first: (320, 640, 1280, 1280) in SD 1.x.
    public var blockOutChannels: [Int]
    /// ResnetBlock2Ds per down block (2); up blocks have one more, to take the extra skip.
    public var layersPerBlock: Int
    /// The number of attention HEADS, despite the name: 8 in SD 1.x.
    ///
    /// A famous misnomer. The original CompVis config had `num_heads: 8`; diffusers stored it as
    /// `attention_head_dim` and its UNet reads it as the head count (`num_attention_heads =
    /// num_attention_heads or attention_head_dim`), so the real head size is `channels / 8`: 40, 80
    /// and 160 in SD 1.x. SD 2.x configs give one number per block, `[5, 10, 20, 20]`, which makes
    /// every head 64 wide. Renaming the key would have broken tens of thousands of configs.
    public var attentionHeadDim: PerBlock<Int>
    /// The correctly named key, which newer configs may carry (usually `null`). Wins if given.
    public var numAttentionHeads: PerBlock<Int>?
    /// Width of the text encoder's token vectors that cross-attention reads: 768 (CLIP ViT-L/14).
    public var crossAttentionDim: Int
    /// Groups of every GroupNorm in the UNet (32) and the epsilon of the ResNet ones (1e-5).
    public var normNumGroups: Int
    public var normEps: Float
    public var downBlockTypes: [String]
    public var upBlockTypes: [String]
    public var midBlockType: String
    /// Latent size the model was trained at: 64 (512 / 8 pixels). Only a default; any size works.
    public var sampleSize: Int
    /// The timestep embedding is `[cos, sin]` (true) rather than `[sin, cos]`.
    public var flipSinToCos: Bool
    /// `downscale_freq_shift` of the timestep embedding: 0 in SD (see `TimestepEmbedding`).
    public var freqShift: Float
    /// false in SD 1.x: `proj_in`/`proj_out` of the transformers are 1x1 convolutions, weight
    /// `(C, C, 1, 1)`. true in SD 2.x: linear layers, weight `(C, C)`. Same arithmetic.
    public var useLinearProjection: Bool
    /// BasicTransformerBlocks per Transformer2DModel: 1.
    public var transformerLayersPerBlock: Int
    /// Padding of the stride-2 downsampling convolutions: 1.
    public var downsamplePadding: Int
    /// Kernel sizes of `conv_in` and `conv_out`: 3.
    public var convInKernel: Int
    public var convOutKernel: Int
    /// Maps the input from [0, 1] to [-1, 1] first (`2x − 1`); false in SD.
    public var centerInputSample: Bool
    /// Only used in float16 by PyTorch (SD 2.1 sets it); a float32 run is the same either way.
    public var upcastAttention: Bool

    // Switches to features of other diffusers UNets (SDXL, class-conditional, ...). SD 1.x and 2.x
    // leave them at the values below; `validate()` rejects any other value with its key name.
    public var actFn: String                    // "silu"
    public var timeEmbeddingType: String        // "positional"
    public var resnetTimeScaleShift: String     // "default"
    public var midBlockScaleFactor: Float       // 1
    public var onlyCrossAttention: Bool         // false
    public var dualCrossAttention: Bool         // false
    public var classEmbedType: String?          // null
    public var additionEmbedType: String?       // null (SDXL: "text_time")
    public var encoderHidDim: Int?              // null
    public var timeCondProjDim: Int?            // null

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
        case attentionHeadDim = "attention_head_dim", numAttentionHeads = "num_attention_heads"
        case crossAttentionDim = "cross_attention_dim"
        case normNumGroups = "norm_num_groups", normEps = "norm_eps"
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types", midBlockType = "mid_block_type"
        case sampleSize = "sample_size", flipSinToCos = "flip_sin_to_cos", freqShift = "freq_shift"
        case useLinearProjection = "use_linear_projection"
        case transformerLayersPerBlock = "transformer_layers_per_block"
        case downsamplePadding = "downsample_padding"
        case convInKernel = "conv_in_kernel", convOutKernel = "conv_out_kernel"
        case centerInputSample = "center_input_sample", upcastAttention = "upcast_attention"
        case actFn = "act_fn", timeEmbeddingType = "time_embedding_type"
        case resnetTimeScaleShift = "resnet_time_scale_shift", midBlockScaleFactor = "mid_block_scale_factor"
        case onlyCrossAttention = "only_cross_attention", dualCrossAttention = "dual_cross_attention"
        case classEmbedType = "class_embed_type", additionEmbedType = "addition_embed_type"
        case encoderHidDim = "encoder_hid_dim", timeCondProjDim = "time_cond_proj_dim"
    }

    /// Stable Diffusion 1.5's `unet/config.json` (1.4 and 1.5 fine-tunes share it).
    public static let sd15 = UNetConfiguration(
        inChannels: 4, outChannels: 4, blockOutChannels: [320, 640, 1280, 1280], layersPerBlock: 2,
        attentionHeadDim: .all(8), crossAttentionDim: 768, normNumGroups: 32, normEps: 1e-5,
        downBlockTypes: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        upBlockTypes: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        sampleSize: 64)

    /// A configuration with diffusers' defaults for everything not given.
    public init(inChannels: Int = 4, outChannels: Int = 4, blockOutChannels: [Int], layersPerBlock: Int = 2,
                attentionHeadDim: PerBlock<Int> = .all(8), numAttentionHeads: PerBlock<Int>? = nil,
                crossAttentionDim: Int, normNumGroups: Int = 32, normEps: Float = 1e-5,
                downBlockTypes: [String], upBlockTypes: [String],
                midBlockType: String = "UNetMidBlock2DCrossAttn", sampleSize: Int,
                flipSinToCos: Bool = true, freqShift: Float = 0, useLinearProjection: Bool = false,
                transformerLayersPerBlock: Int = 1, downsamplePadding: Int = 1,
                convInKernel: Int = 3, convOutKernel: Int = 3, centerInputSample: Bool = false,
                upcastAttention: Bool = false) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.blockOutChannels = blockOutChannels
        self.layersPerBlock = layersPerBlock
        self.attentionHeadDim = attentionHeadDim
        self.numAttentionHeads = numAttentionHeads
        self.crossAttentionDim = crossAttentionDim
        self.normNumGroups = normNumGroups
        self.normEps = normEps
        self.downBlockTypes = downBlockTypes
        self.upBlockTypes = upBlockTypes
        self.midBlockType = midBlockType
        self.sampleSize = sampleSize
        self.flipSinToCos = flipSinToCos
        self.freqShift = freqShift
        self.useLinearProjection = useLinearProjection
        self.transformerLayersPerBlock = transformerLayersPerBlock
        self.downsamplePadding = downsamplePadding
        self.convInKernel = convInKernel
        self.convOutKernel = convOutKernel
        self.centerInputSample = centerInputSample
        self.upcastAttention = upcastAttention
        actFn = "silu"
        timeEmbeddingType = "positional"
        resnetTimeScaleShift = "default"
        midBlockScaleFactor = 1
        onlyCrossAttention = false
        dualCrossAttention = false
    }

    /// Decodes a diffusers config; a missing key takes the default of diffusers'
    /// `UNet2DConditionModel.__init__`, an unknown key is ignored.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        inChannels = try value(.inChannels, 4)
        outChannels = try value(.outChannels, 4)
        blockOutChannels = try value(.blockOutChannels, [320, 640, 1280, 1280])
        layersPerBlock = try value(.layersPerBlock, 2)
        attentionHeadDim = try value(.attentionHeadDim, .all(8))
        numAttentionHeads = try c.decodeIfPresent(PerBlock<Int>.self, forKey: .numAttentionHeads)
        crossAttentionDim = try value(.crossAttentionDim, 1280)
        normNumGroups = try value(.normNumGroups, 32)
        normEps = try value(.normEps, 1e-5)
        downBlockTypes = try value(.downBlockTypes, ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                                     "CrossAttnDownBlock2D", "DownBlock2D"])
        upBlockTypes = try value(.upBlockTypes, ["UpBlock2D", "CrossAttnUpBlock2D",
                                                 "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"])
        midBlockType = try value(.midBlockType, "UNetMidBlock2DCrossAttn")
        sampleSize = try value(.sampleSize, 64)
        flipSinToCos = try value(.flipSinToCos, true)
        freqShift = try value(.freqShift, 0)
        useLinearProjection = try value(.useLinearProjection, false)
        transformerLayersPerBlock = try value(.transformerLayersPerBlock, 1)
        downsamplePadding = try value(.downsamplePadding, 1)
        convInKernel = try value(.convInKernel, 3)
        convOutKernel = try value(.convOutKernel, 3)
        centerInputSample = try value(.centerInputSample, false)
        upcastAttention = try value(.upcastAttention, false)
        actFn = try value(.actFn, "silu")
        timeEmbeddingType = try value(.timeEmbeddingType, "positional")
        resnetTimeScaleShift = try value(.resnetTimeScaleShift, "default")
        midBlockScaleFactor = try value(.midBlockScaleFactor, 1)
        onlyCrossAttention = try value(.onlyCrossAttention, false)
        dualCrossAttention = try value(.dualCrossAttention, false)
        classEmbedType = try c.decodeIfPresent(String.self, forKey: .classEmbedType)
        additionEmbedType = try c.decodeIfPresent(String.self, forKey: .additionEmbedType)
        encoderHidDim = try c.decodeIfPresent(Int.self, forKey: .encoderHidDim)
        timeCondProjDim = try c.decodeIfPresent(Int.self, forKey: .timeCondProjDim)
    }

    // MARK: Derived numbers

    /// Attention heads in the transformers of block `i` (down block `i`, or the mirrored up block).
    public func heads(block i: Int) -> Int { (numAttentionHeads ?? attentionHeadDim)[block: i] }

    /// Width of the time embedding: 4 × the first level's channels (1280 in SD 1.x).
    public var timeEmbeddingDim: Int { 4 * blockOutChannels[0] }

    /// Checks that this is a UNet this project can run, naming the first key that is not.
    public func validate() throws {
        func require(_ ok: Bool, _ key: CodingKeys, _ found: Any?, supported: String) throws {
            if !ok {
                throw UNetConfigurationError.unsupported(key: key.rawValue, value: "\(found.map { "\($0)" } ?? "null")",
                                                         supported: supported)
            }
        }
        // Every count is bounded: a config file is read before any weight, and an absurd number
        // (layers_per_block = 10⁹) must be an error, not an attempt to allocate a billion layers.
        let levels = blockOutChannels.count
        try require((1...8).contains(levels) && blockOutChannels.allSatisfy { (1...65536).contains($0) },
                    .blockOutChannels, blockOutChannels, supported: "1 to 8 channel counts of 1 to 65536")
        try require(downBlockTypes.count == levels
                    && downBlockTypes.allSatisfy { ["CrossAttnDownBlock2D", "DownBlock2D"].contains($0) },
                    .downBlockTypes, downBlockTypes,
                    supported: "\(levels) of CrossAttnDownBlock2D / DownBlock2D (one per block_out_channels)")
        try require(upBlockTypes.count == levels
                    && upBlockTypes.allSatisfy { ["CrossAttnUpBlock2D", "UpBlock2D"].contains($0) },
                    .upBlockTypes, upBlockTypes,
                    supported: "\(levels) of CrossAttnUpBlock2D / UpBlock2D (one per block_out_channels)")
        try require(midBlockType == "UNetMidBlock2DCrossAttn", .midBlockType, midBlockType,
                    supported: "UNetMidBlock2DCrossAttn")
        try require((1...1024).contains(inChannels) && (1...1024).contains(outChannels), .inChannels,
                    [inChannels, outChannels], supported: "channel counts from 1 to 1024")
        try require((1...64).contains(layersPerBlock), .layersPerBlock, layersPerBlock, supported: "1 to 64")
        try require((1...64).contains(transformerLayersPerBlock), .transformerLayersPerBlock, transformerLayersPerBlock,
                    supported: "one number, 1 to 64")
        try require((1...65536).contains(crossAttentionDim), .crossAttentionDim, crossAttentionDim,
                    supported: "a width from 1 to 65536")
        try require((1...4096).contains(sampleSize), .sampleSize, sampleSize, supported: "1 to 4096 latent pixels")
        try require(normNumGroups > 0 && blockOutChannels.allSatisfy { $0 % normNumGroups == 0 },
                    .normNumGroups, normNumGroups, supported: "a divisor of every entry of block_out_channels")
        try require([convInKernel, convOutKernel].allSatisfy { (1...15).contains($0) && $0 % 2 == 1 }, .convInKernel,
                    [convInKernel, convOutKernel], supported: "odd kernel sizes up to 15")
        // 0 would make diffusers pad one side by hand before a padding-free convolution; SD's is 1.
        try require(downsamplePadding == 1, .downsamplePadding, downsamplePadding, supported: "1")
        let headKey: CodingKeys = numAttentionHeads == nil ? .attentionHeadDim : .numAttentionHeads
        let headCounts = numAttentionHeads ?? attentionHeadDim
        try require(headCounts.fits(levels), headKey, headCounts,
                    supported: "one head count, or one per block (\(levels))")
        for i in 0..<levels {
            let heads = headCounts[block: i]
            try require(heads > 0 && blockOutChannels[i] % heads == 0, headKey, headCounts,
                        supported: "head counts that divide the block's \(blockOutChannels[i]) channels")
        }
        try require(actFn == "silu", .actFn, actFn, supported: "silu")
        try require(timeEmbeddingType == "positional", .timeEmbeddingType, timeEmbeddingType, supported: "positional")
        try require(resnetTimeScaleShift == "default", .resnetTimeScaleShift, resnetTimeScaleShift, supported: "default")
        try require(midBlockScaleFactor == 1, .midBlockScaleFactor, midBlockScaleFactor, supported: "1")
        try require(!onlyCrossAttention, .onlyCrossAttention, onlyCrossAttention, supported: "false")
        try require(!dualCrossAttention, .dualCrossAttention, dualCrossAttention, supported: "false")
        try require(classEmbedType == nil, .classEmbedType, classEmbedType, supported: "null")
        try require(additionEmbedType == nil, .additionEmbedType, additionEmbedType,
                    supported: "null (SDXL's \"text_time\" is not supported)")
        try require(encoderHidDim == nil, .encoderHidDim, encoderHidDim, supported: "null")
        try require(timeCondProjDim == nil, .timeCondProjDim, timeCondProjDim, supported: "null")
    }
}

/// A setting diffusers accepts either as one number for every block or as a list, one per block
/// (`"attention_head_dim": 8` in SD 1.x, `[5, 10, 20, 20]` in SD 2.x).
public enum PerBlock<Value: Codable & Equatable & Sendable>: Codable, Equatable, Sendable, CustomStringConvertible {
    case all(Value)
    case each([Value])

    /// The value for block `i`.
    public subscript(block i: Int) -> Value {
        switch self {
        case .all(let value): return value
        case .each(let values): return values[i]
        }
    }

    /// Whether there is a value for each of `blocks` blocks.
    func fits(_ blocks: Int) -> Bool {
        switch self {
        case .all: return true
        case .each(let values): return values.count == blocks
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let values = try? c.decode([Value].self) {
            self = .each(values)
        } else {
            self = .all(try c.decode(Value.self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .all(let value): try c.encode(value)
        case .each(let values): try c.encode(values)
        }
    }

    public var description: String {
        switch self {
        case .all(let value): return "\(value)"
        case .each(let values): return "\(values)"
        }
    }
}

/// A `unet/config.json` describes a UNet this project does not implement.
public enum UNetConfigurationError: Error, CustomStringConvertible, Equatable {
    case unsupported(key: String, value: String, supported: String)

    public var description: String {
        switch self {
        case .unsupported(let key, let value, let supported):
            return "unet config: \(key) = \(value) is not supported (supported: \(supported)); "
                + "this project runs the UNets of Stable Diffusion 1.x and 2.x"
        }
    }
}
