import TensorCore

/// Runs transformer blocks over a feature map by treating each pixel as a token (diffusers'
/// `Transformer2DModel`; the "SpatialTransformer" of the original code).
///
///     h = norm(x)                                (N, C, H, W), GroupNorm, eps 1e-6
///     h = h as tokens                            (N, C, H, W) → (N, H·W, C)
///     h = proj_in(h)                             per-pixel linear map C → C
///     h = transformer_blocks(h, context)         (N, H·W, C)
///     h = proj_out(h)                            per-pixel linear map C → C
///     out = x + (h as a feature map)             (N, H·W, C) → (N, C, H, W), plus the residual
///
/// `proj_in` and `proj_out` are 1x1 convolutions in SD 1.x (weight `(C, C, 1, 1)`) and linear
/// layers in SD 2.x (weight `(C, C)`, `use_linear_projection`). A 1x1 convolution applies one
/// matrix to every pixel's channel vector, which is exactly a linear layer on the tokens, so both
/// load into a `Linear` and run after the reshape: only the stored weight shape differs. diffusers
/// applies the convolution before the reshape; the result is the same up to float rounding.
public struct Transformer2DModel: Sendable {
    public let norm: GroupNorm                            // (C)
    public let projIn: Linear                             // (C, C), stored (C, C, 1, 1) in SD 1.x; proj_in
    public let transformerBlocks: [BasicTransformerBlock] // transformer_blocks.0 ...
    public let projOut: Linear                            // (C, C), stored (C, C, 1, 1) in SD 1.x; proj_out

    /// - Parameters:
    ///   - channels: `C` (the attention's inner width is also `C`: `heads · C / heads`).
    ///   - layers: transformer blocks (1 in SD).
    ///   - useLinearProjection: whether `proj_in`/`proj_out` are stored as `(C, C)` linear weights.
    public init(_ weights: Weights, channels: Int, heads: Int, contextDim: Int, layers: Int,
                groups: Int, useLinearProjection: Bool) throws {
        norm = try GroupNorm(weights["norm"], groups: groups, channels: channels, eps: 1e-6)
        projIn = try Self.projection(weights["proj_in"], channels: channels, linear: useLinearProjection)
        transformerBlocks = try (0..<layers).map {
            try BasicTransformerBlock(weights["transformer_blocks.\($0)"], channels: channels, heads: heads,
                                      contextDim: contextDim)
        }
        projOut = try Self.projection(weights["proj_out"], channels: channels, linear: useLinearProjection)
    }

    /// A `(C, C)` linear layer, read from a linear weight `(C, C)` or a 1x1 convolution `(C, C, 1, 1)`.
    static func projection(_ weights: Weights, channels: Int, linear: Bool) throws -> Linear {
        let shape = linear ? [channels, channels] : [channels, channels, 1, 1]
        let weight = try weights.parameter("weight", shape: shape).reshaped([channels, channels])
        return Linear(weight: weight, bias: try weights.tensor("bias", shape: [channels]), key: weights.prefix)
    }

    /// - Parameters:
    ///   - x: `(N, C, H, W)`.
    ///   - context: text tokens `(N, 77, 768)`.
    /// - Returns: `(N, C, H, W)`.
    public func callAsFunction(_ x: Tensor, context: Tensor, observer: CrossAttentionObserver? = nil) -> Tensor {
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var h = norm(x)
        h = h.reshaped([batch, channels, height * width]).permuted([0, 2, 1])   // (N, H·W, C)
        h = projIn(h)
        for block in transformerBlocks {
            h = block(h, context: context, observer: observer)
        }
        h = projOut(h)
        h = h.permuted([0, 2, 1]).reshaped([batch, channels, height, width])     // (N, C, H, W)
        return h + x
    }
}
