import Foundation
import TensorCore

/// TAESD, the tiny autoencoder (Ollin Boer Bohan, 2023; diffusers' `AutoencoderTiny`): a
/// stand-in for Stable Diffusion's VAE, distilled to read and write the *same* latents with a
/// fraction of the work.
///
/// SD's decoder spends about 2.5 TFLOP on a 512x512 picture (512-channel ResNet blocks, attention,
/// GroupNorm); TAESD's is plain 3x3 convolutions at 64 channels with ReLU, 0.14 TFLOP, and
/// its pictures are a little softer. Cheap enough to decode every denoising step into a real-
/// looking frame (`sd generate --preview taesd`), or the final picture (`--decoder taesd`).
///
///     decoder:  z → tanh(z/3)·3 → conv, ReLU → 3 blocks → ×2 up, conv → 3 blocks → ×2 up, conv
///               → 3 blocks → ×2 up, conv → 1 block → conv(→ 3) = picture in [0, 1]
///     encoder:  picture in [0, 1] → conv → 1 block → (stride-2 conv → 3 blocks) × 3 → conv(→ 4)
///     block:    ReLU(conv(ReLU(conv(ReLU(conv(x))))) + x)            (3x3 convolutions, padding 1)
///
/// The latents are the UNet's (SD's VAE latents times 0.18215): no scaling factor is applied.
/// Pictures are in [0, 1] inside TAESD; `decode` and `encode` use SD's [−1, 1] like `AutoencoderKL`.
///
/// Files: the authors' `taesd_decoder.safetensors` / `taesd_encoder.safetensors` (layer-index
/// keys, see `KeyMapping.tinyAutoencoderName`), or a diffusers `AutoencoderTiny` folder.
///
/// ```swift
/// let taesd = try TinyAutoencoder.load("taesd_decoder.safetensors")
/// let picture = try taesd.decode(latents)          // (1, 3, 8h, 8w) in [−1, 1]
/// ```
public struct TinyAutoencoder: Sendable {
    public let decoder: TinyDecoder?
    public let encoder: TinyEncoder?
    /// Where it was loaded from.
    public let path: String

    public init(decoder: TinyDecoder?, encoder: TinyEncoder?, path: String) {
        self.decoder = decoder
        self.encoder = encoder
        self.path = path
    }

    /// Latents `(N, 4, h, w)` at the UNet's scale → picture `(N, 3, 8h, 8w)` in [−1, 1] (not clamped).
    public func decode(_ latents: Tensor) throws -> Tensor {
        guard let decoder else { throw CheckpointError.missingComponent(path, .vae) }
        return decoder(latents)
    }

    /// Picture `(N, 3, H, W)` in [−1, 1], sides multiples of 8 → latents at the UNet's scale.
    public func encode(_ image: Tensor) throws -> Tensor {
        guard let encoder else { throw CheckpointError.missingComponent(path, .vae) }
        return encoder(image)
    }
}

/// TAESD's numbers: widths and block counts per level (SD 1.x's TAESD: 64 channels everywhere,
/// 1, 3, 3, 3 blocks on the way down, 3, 3, 3, 1 on the way up); diffusers' config names.
public struct TinyAutoencoderConfiguration: Codable, Equatable, Sendable {
    public var encoderBlockOutChannels = [64, 64, 64, 64]
    public var decoderBlockOutChannels = [64, 64, 64, 64]
    public var numEncoderBlocks = [1, 3, 3, 3]
    public var numDecoderBlocks = [3, 3, 3, 1]
    public var latentChannels = 4
    public var upsamplingScalingFactor = 2

    public static let sd = TinyAutoencoderConfiguration()

    enum CodingKeys: String, CodingKey {
        case encoderBlockOutChannels = "encoder_block_out_channels", decoderBlockOutChannels = "decoder_block_out_channels"
        case numEncoderBlocks = "num_encoder_blocks", numDecoderBlocks = "num_decoder_blocks"
        case latentChannels = "latent_channels", upsamplingScalingFactor = "upsampling_scaling_factor"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = Self.sd
        encoderBlockOutChannels = try c.decodeIfPresent([Int].self, forKey: .encoderBlockOutChannels) ?? defaults.encoderBlockOutChannels
        decoderBlockOutChannels = try c.decodeIfPresent([Int].self, forKey: .decoderBlockOutChannels) ?? defaults.decoderBlockOutChannels
        numEncoderBlocks = try c.decodeIfPresent([Int].self, forKey: .numEncoderBlocks) ?? defaults.numEncoderBlocks
        numDecoderBlocks = try c.decodeIfPresent([Int].self, forKey: .numDecoderBlocks) ?? defaults.numDecoderBlocks
        latentChannels = try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? defaults.latentChannels
        upsamplingScalingFactor = try c.decodeIfPresent(Int.self, forKey: .upsamplingScalingFactor) ?? defaults.upsamplingScalingFactor
    }

    /// Throws unless this is a TAESD this code can build (four levels of positive widths, ×2 upsampling).
    func check(path: String) throws {
        let lists = [encoderBlockOutChannels, decoderBlockOutChannels, numEncoderBlocks, numDecoderBlocks]
        guard lists.allSatisfy({ $0.count == 4 }), lists.joined().allSatisfy({ $0 >= 0 && $0 <= 4096 }),
              (encoderBlockOutChannels + decoderBlockOutChannels).allSatisfy({ $0 > 0 }),
              (1...64).contains(latentChannels), upsamplingScalingFactor == 2 else {
            throw CheckpointError.corrupt(path, "not a TAESD configuration this project runs (four levels, ×2 upsampling): \(self)")
        }
    }
}

/// A TAESD block: three 3x3 convolutions with ReLU between them, added to its input, then ReLU.
/// (The authors' block has a 1x1 convolution on the skip path when the widths differ; SD's TAESD
/// keeps its width in every block, so it has none.)
public struct TinyAutoencoderBlock: Sendable {
    public let conv0, conv2, conv4: Conv2d   // (C, C, 3, 3) each, with bias: `conv.0`, `conv.2`, `conv.4`

    init(_ weights: Weights, channels: Int) throws {
        conv0 = try Conv2d(weights["conv.0"], inChannels: channels, outChannels: channels, kernelSize: 3, padding: 1)
        conv2 = try Conv2d(weights["conv.2"], inChannels: channels, outChannels: channels, kernelSize: 3, padding: 1)
        conv4 = try Conv2d(weights["conv.4"], inChannels: channels, outChannels: channels, kernelSize: 3, padding: 1)
    }

    /// ReLU(conv₄(ReLU(conv₂(ReLU(conv₀(x))))) + x)
    public func callAsFunction(_ x: Tensor) -> Tensor {
        (conv4(conv2(conv0(x).relu()).relu()) + x).relu()
    }
}

/// One entry of TAESD's layer list (diffusers' `layers` index = position in the list).
enum TinyAutoencoderLayer: Sendable {
    case conv(Conv2d), block(TinyAutoencoderBlock), relu, upsample

    func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .conv(let conv): return conv(x)
        case .block(let block): return block(x)
        case .relu: return x.relu()
        case .upsample: return x.upsampledNearest2x()
        }
    }
}

/// TAESD's decoder: latents → picture.
public struct TinyDecoder: Sendable {
    let layers: [TinyAutoencoderLayer]

    /// `weights` scoped to `decoder.layers`; layer i reads `i.*`.
    public init(_ weights: Weights, configuration c: TinyAutoencoderConfiguration) throws {
        var layers: [TinyAutoencoderLayer] = []
        func next() -> Weights { weights[String(layers.count)] }
        let widths = c.decoderBlockOutChannels
        layers.append(.conv(try Conv2d(next(), inChannels: c.latentChannels, outChannels: widths[0], kernelSize: 3, padding: 1)))
        layers.append(.relu)
        for level in 0..<4 {
            let isLast = level == 3
            for _ in 0..<c.numDecoderBlocks[level] {
                layers.append(.block(try TinyAutoencoderBlock(next(), channels: widths[level])))
            }
            if !isLast { layers.append(.upsample) }
            // After each upsampling a convolution without bias; the last one maps to RGB, with bias.
            layers.append(.conv(try Conv2d(next(), inChannels: widths[level], outChannels: isLast ? 3 : widths[level],
                                           kernelSize: 3, padding: 1, bias: isLast)))
        }
        self.layers = layers
    }

    /// Floating-point operations of one decode of `(1, C, h, w)` latents: 2 per multiply-add of
    /// every convolution (ReLU, the clamp and the copies of upsampling are not counted).
    public func flopCount(latentHeight h: Int, latentWidth w: Int) -> Int {
        var (height, width, total) = (h, w, 0)
        func conv(_ c: Conv2d) { total += 2 * c.storedWeight.shape.reduce(1, *) * height * width }
        for layer in layers {
            switch layer {
            case .conv(let c): conv(c)
            case .block(let b): [b.conv0, b.conv2, b.conv4].forEach(conv)
            case .upsample: (height, width) = (2 * height, 2 * width)
            case .relu: break
            }
        }
        return total
    }

    /// Latents → picture in [−1, 1] (TAESD's [0, 1] times 2 minus 1, as diffusers returns it).
    public func callAsFunction(_ latents: Tensor) -> Tensor {
        // Soft clamp to ±3: tanh(z / 3) · 3.
        var x = latents.map { tanhf($0 / 3) * 3 }
        for layer in layers { x = layer(x) }
        return x.map { $0 * 2 - 1 }
    }
}

/// TAESD's encoder: picture → latents.
public struct TinyEncoder: Sendable {
    let layers: [TinyAutoencoderLayer]

    /// `weights` scoped to `encoder.layers`.
    public init(_ weights: Weights, configuration c: TinyAutoencoderConfiguration) throws {
        var layers: [TinyAutoencoderLayer] = []
        func next() -> Weights { weights[String(layers.count)] }
        let widths = c.encoderBlockOutChannels
        for level in 0..<4 {
            // The first convolution reads RGB; the others halve the size (stride 2, no bias).
            layers.append(.conv(level == 0
                ? try Conv2d(next(), inChannels: 3, outChannels: widths[0], kernelSize: 3, padding: 1)
                : try Conv2d(next(), inChannels: widths[level], outChannels: widths[level], kernelSize: 3,
                             stride: 2, padding: 1, bias: false)))
            for _ in 0..<c.numEncoderBlocks[level] {
                layers.append(.block(try TinyAutoencoderBlock(next(), channels: widths[level])))
            }
        }
        layers.append(.conv(try Conv2d(next(), inChannels: widths[3], outChannels: c.latentChannels, kernelSize: 3, padding: 1)))
        self.layers = layers
    }

    /// Picture in [−1, 1] → latents at the UNet's scale.
    public func callAsFunction(_ image: Tensor) -> Tensor {
        var x = image.map { ($0 + 1) / 2 }
        for layer in layers { x = layer(x) }
        return x
    }
}
