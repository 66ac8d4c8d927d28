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

// MARK: - Training

extension Transformer2DModel {
    /// What the training forward keeps.
    public struct Saved: Sendable {
        let x: Tensor                          // (N, C, H, W): input of the GroupNorm
        let tokens: Tensor                     // (N, H·W, C): input of proj_in
        let blockInputs: [Tensor]              // input of each transformer block
        let blocks: [BasicTransformerBlock.Saved]
        let last: Tensor                       // output of the last block: input of proj_out
    }

    /// `callAsFunction`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor, context: Tensor) -> (output: Tensor, saved: Saved) {
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let tokens = norm(x).reshaped([batch, channels, height * width]).permuted([0, 2, 1])
        var h = projIn(tokens)
        var inputs: [Tensor] = [], saved: [BasicTransformerBlock.Saved] = []
        for block in transformerBlocks {
            inputs.append(h)
            let (out, s) = block.trainingForward(h, context: context)
            saved.append(s)
            h = out
        }
        let out = projOut(h).permuted([0, 2, 1]).reshaped([batch, channels, height, width]) + x
        return (out, Saved(x: x, tokens: tokens, blockInputs: inputs, blocks: saved, last: h))
    }

    /// The backward of `trainingForward`: a permute's gradient is the inverse permute ([0, 2, 1]
    /// is its own inverse), and the residual passes `dOut` straight to `x`.
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) -> (dx: Tensor, dContext: Tensor) {
        let (batch, channels, height, width) = (dOut.shape[0], dOut.shape[1], dOut.shape[2], dOut.shape[3])
        var dh = projOut.backward(dOut.reshaped([batch, channels, height * width]).permuted([0, 2, 1]),
                                  input: saved.last, gradients: &gradients)
        var dContext: Tensor?
        for (block, s) in zip(transformerBlocks, saved.blocks).reversed() {
            let (dIn, dc) = block.backward(dh, saved: s, gradients: &gradients)
            (dh, dContext) = (dIn, accumulated(dContext, dc))
        }
        let dTokens = projIn.backward(dh, input: saved.tokens, gradients: &gradients)
        var dx = norm.backward(dTokens.permuted([0, 2, 1]).reshaped([batch, channels, height, width]), input: saved.x,
                               gradients: &gradients)
        dx += dOut
        return (dx, dContext!)
    }
}
