import TensorCore

/// The shapes model: Stable Diffusion 1.x's three networks in miniature, sized to be trained from
/// scratch on two CPU cores in under half an hour and shipped in a few megabytes.
///
/// | part | SD 1.x | here |
/// |---|---|---|
/// | pictures | 512x512 | 64x64 |
/// | VAE | 128/256/512/512 channels, 2 ResNets per level | 16/32/32/32, 1 ResNet per level; the same factor 8 and 4 latent channels |
/// | latents | 64x64x4 | 8x8x4 |
/// | text encoder | CLIP ViT-L/14's: width 768, 12 layers, 49,408 tokens | the same kind of transformer: width 64, 2 layers, a vocabulary learned from the captions |
/// | UNet | 320/640/1280/1280 channels, 4 levels | 32/64/64, 3 levels, the same block types |
///
/// The block types, attention layers, norms, schedule and file layout are SD's, so the same code
/// that runs SD 1.5 runs this model, and the same files are written.
public enum TinyShapesModel {
    /// Pictures are 64x64; the VAE divides by 8.
    public static let pictureSize = 64

    public static let vae = VAEConfiguration(
        blockOutChannels: [16, 32, 32, 32], layersPerBlock: 1, normNumGroups: 8, scalingFactor: 1, sampleSize: pictureSize)

    /// The text encoder for a tokenizer of `vocabularySize` tokens.
    public static func textEncoder(vocabularySize: Int) -> CLIPTextConfiguration {
        CLIPTextConfiguration(hiddenSize: 64, intermediateSize: 256, numAttentionHeads: 4, numHiddenLayers: 2,
                              maxPositionEmbeddings: CLIPTokenizer.contextLength, vocabSize: vocabularySize)
    }

    public static let unet = UNetConfiguration(
        blockOutChannels: [32, 64, 64], layersPerBlock: 1, attentionHeadDim: .all(4), crossAttentionDim: 64, normNumGroups: 8,
        downBlockTypes: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        upBlockTypes: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], sampleSize: pictureSize / 8)

    /// Pictures no training run sees (training uses the recipe's seed and the next one), for
    /// measuring the VAE and the sample sheets' reference.
    public static let heldOut = ShapesDataset(seed: 0xFFFF_FFFF)

    /// The prompts of the sample sheets: every colour, shape and position, and both left-out pairs.
    public static let samplePrompts = [
        "a red circle on the left", "a green square at the top", "a blue triangle on the right", "a yellow circle at the bottom",
        "a green triangle", "a red square on the right", "a blue circle", "a yellow triangle at the top",
        "a green circle on the left", "a red triangle at the bottom", "a blue square", "a yellow square on the right",
    ]

    /// The tokenizer: BPE merges learned from the words of every caption of the grammar (the
    /// left-out pairs' words are all in other captions too), so every word is one token.
    public static func tokenizer() throws -> CLIPTokenizer {
        var words: [String: Int] = [:]
        for caption in ShapesDataset.allCaptions {
            for word in caption.split(separator: " ") { words[ByteEncoder.encode(String(word)), default: 0] += 1 }
        }
        return try CLIPTokenizer(merges: BytePairEncoding.learnMerges(words: words))
    }
}
