import Foundation

/// The shape of a CLIP text transformer, read from a transformers `config.json` (the
/// `text_encoder/config.json` of a diffusers model) under the same names.
///
/// Keys that are absent take transformers' `CLIPTextConfig` defaults, as transformers does; keys
/// this model does not need (`projection_dim`, `bos_token_id`, dropout rates, ...) are ignored.
public struct CLIPTextConfiguration: Codable, Equatable, Sendable {
    /// The nonlinearity inside each MLP.
    public enum Activation: String, Codable, Sendable {
        /// `x · σ(1.702 x)`: OpenAI's fast approximation of GELU, which CLIP was trained with.
        case quickGELU = "quick_gelu"
        /// `x · Φ(x)`, the exact GELU (OpenCLIP's text encoders use it).
        case gelu
    }

    /// D, the width of every token vector (768 in SD 1.x).
    public var hiddenSize: Int
    /// The MLP's inner width (4·D = 3072).
    public var intermediateSize: Int
    /// Attention heads per layer (12, each 64 wide).
    public var numAttentionHeads: Int
    /// Transformer layers (12).
    public var numHiddenLayers: Int
    /// Rows of the position table, the longest prompt in tokens (77).
    public var maxPositionEmbeddings: Int
    /// Rows of the token table (49,408).
    public var vocabSize: Int
    public var hiddenAct: Activation
    public var layerNormEps: Float

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numAttentionHeads = "num_attention_heads"
        case numHiddenLayers = "num_hidden_layers"
        case maxPositionEmbeddings = "max_position_embeddings"
        case vocabSize = "vocab_size"
        case hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
    }

    public init(hiddenSize: Int, intermediateSize: Int, numAttentionHeads: Int, numHiddenLayers: Int,
                maxPositionEmbeddings: Int = 77, vocabSize: Int = 49408,
                hiddenAct: Activation = .quickGELU, layerNormEps: Float = 1e-5) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numAttentionHeads = numAttentionHeads
        self.numHiddenLayers = numHiddenLayers
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.vocabSize = vocabSize
        self.hiddenAct = hiddenAct
        self.layerNormEps = layerNormEps
    }

    /// The text encoder of Stable Diffusion 1.x: the text half of OpenAI's CLIP ViT-L/14.
    public static let sd15 = CLIPTextConfiguration(
        hiddenSize: 768, intermediateSize: 3072, numAttentionHeads: 12, numHiddenLayers: 12,
        maxPositionEmbeddings: 77, vocabSize: 49408, hiddenAct: .quickGELU, layerNormEps: 1e-5)

    public init(from decoder: Decoder) throws {
        // Defaults are transformers' CLIPTextConfig defaults (a smaller CLIP than SD's).
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? 512
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? 2048
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? 8
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? 12
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 77
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? 49408
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-5
        let activation = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? Activation.quickGELU.rawValue
        guard let hiddenAct = Activation(rawValue: activation) else {
            throw DecodingError.dataCorruptedError(
                forKey: .hiddenAct, in: c,
                debugDescription: "hidden_act '\(activation)' is not supported; expected quick_gelu or gelu")
        }
        self.hiddenAct = hiddenAct
        let sizes = [hiddenSize, intermediateSize, numAttentionHeads, numHiddenLayers, maxPositionEmbeddings, vocabSize]
        guard sizes.allSatisfy({ $0 > 0 }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "sizes must be positive, got \(sizes)"))
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw DecodingError.dataCorruptedError(
                forKey: .numAttentionHeads, in: c,
                debugDescription: "hidden_size \(hiddenSize) does not split into \(numAttentionHeads) heads")
        }
    }

    /// Reads a transformers `config.json`.
    public static func load(_ url: URL) throws -> CLIPTextConfiguration {
        guard FileManager.default.fileExists(atPath: url.path) else { throw CheckpointError.missing(url.path) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CheckpointError.unreadable(url.path, error.localizedDescription)
        }
        do {
            return try JSONDecoder().decode(CLIPTextConfiguration.self, from: data)
        } catch let error as DecodingError {
            throw CheckpointError.corrupt(url.path, Self.explain(error))
        }
    }

    /// Width of one attention head (64 in SD 1.x).
    public var headDim: Int { hiddenSize / numAttentionHeads }

    /// Throws unless every size is one this code can build: positive, bounded (a config file is
    /// read before any weight, so `num_hidden_layers = 10⁹` must be refused, not attempted), and
    /// heads that split the width.
    public func validate() throws {
        let sizes: [(String, Int, ClosedRange<Int>)] = [
            ("hidden_size", hiddenSize, 1...65536), ("intermediate_size", intermediateSize, 1...262_144),
            ("num_attention_heads", numAttentionHeads, 1...1024), ("num_hidden_layers", numHiddenLayers, 1...256),
            ("max_position_embeddings", maxPositionEmbeddings, 1...4096), ("vocab_size", vocabSize, 1...1_000_000),
        ]
        for (name, value, range) in sizes where !range.contains(value) {
            throw CLIPTextConfigurationError.unsupported("text_encoder config: \(name) = \(value) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw CLIPTextConfigurationError.unsupported("text_encoder config: hidden_size \(hiddenSize) does not split into \(numAttentionHeads) heads")
        }
    }

    private static func explain(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context): return context.debugDescription
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context):
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            return key.isEmpty ? context.debugDescription : "\(key): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// A text encoder configuration this project cannot build, with the reason.
public enum CLIPTextConfigurationError: Error, CustomStringConvertible, Equatable {
    case unsupported(String)
    public var description: String {
        switch self { case .unsupported(let reason): return reason }
    }
}
