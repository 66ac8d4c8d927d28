import TensorCore

/// One entry of the UNet's `down_blocks`: a level with attention or without, as
/// `down_block_types` in the configuration says.
public enum UNetDownBlock: Sendable {
    case crossAttention(CrossAttnDownBlock2D)   // "CrossAttnDownBlock2D"
    case plain(DownBlock2D)                     // "DownBlock2D"

    /// Loads `down_blocks.<level>` as the type the configuration names.
    public init(_ weights: Weights, configuration c: UNetConfiguration, level: Int) throws {
        switch c.downBlockTypes[level] {
        case "CrossAttnDownBlock2D":
            self = .crossAttention(try CrossAttnDownBlock2D(weights, configuration: c, level: level))
        case "DownBlock2D":
            self = .plain(try DownBlock2D(weights, configuration: c, level: level))
        case let other:
            throw UNetConfigurationError.unsupported(key: "down_block_types", value: other,
                                                     supported: "CrossAttnDownBlock2D, DownBlock2D")
        }
    }

    /// The block's output and its skip tensors (see the two block types).
    public func callAsFunction(_ x: Tensor, timeEmbedding: Tensor, context: Tensor,
                               observer: CrossAttentionObserver?) -> (output: Tensor, skips: [Tensor]) {
        switch self {
        case .crossAttention(let block): return block(x, timeEmbedding: timeEmbedding, context: context, observer: observer)
        case .plain(let block): return block(x, timeEmbedding: timeEmbedding)
        }
    }
}

// MARK: - Training

extension UNetDownBlock {
    /// The block's ResNets and transformers, whichever type it is.
    public var level: any UNetLevel {
        switch self {
        case .crossAttention(let block): return block
        case .plain(let block): return block
        }
    }

    public var resnets: [ResnetBlock2D] { level.resnets }
    public var attentions: [Transformer2DModel] { level.attentions }

    public var downsamplers: [Downsample2D] {
        switch self {
        case .crossAttention(let block): return block.downsamplers
        case .plain(let block): return block.downsamplers
        }
    }

    /// What the training forward keeps.
    public struct Saved: Sendable {
        let resnets: [ResnetBlock2D.Saved]
        let attentions: [Transformer2DModel.Saved]
        let downsamplerInput: Tensor?
    }

    /// `callAsFunction`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor, timeEmbedding: Tensor, context: Tensor)
        -> (output: Tensor, skips: [Tensor], saved: Saved) {
        var x = x, skips: [Tensor] = []
        var resnetsSaved: [ResnetBlock2D.Saved] = [], attentionsSaved: [Transformer2DModel.Saved] = []
        for (i, resnet) in resnets.enumerated() {
            let (h, s) = resnet.trainingForward(x, timeEmbedding: timeEmbedding)
            resnetsSaved.append(s)
            x = h
            if i < attentions.count {
                let (a, sa) = attentions[i].trainingForward(x, context: context)
                attentionsSaved.append(sa)
                x = a
            }
            skips.append(x)
        }
        var downsamplerInput: Tensor?
        for downsampler in downsamplers {
            downsamplerInput = x
            x = downsampler(x)
            skips.append(x)
        }
        return (x, skips, Saved(resnets: resnetsSaved, attentions: attentionsSaved, downsamplerInput: downsamplerInput))
    }

    /// The backward of `trainingForward`. Every skip is also the next layer's input, so the
    /// gradient at each point is what came back through the rest of the block plus the skip's own
    /// gradient from the up half (`dSkips`, in the order the skips were made).
    ///
    /// - Returns: the gradients of the input, of the time embedding and of the text context.
    public func backward(_ dOut: Tensor, dSkips: [Tensor], saved: Saved, gradients: inout Gradients)
        -> (dx: Tensor, dTimeEmbedding: Tensor, dContext: Tensor?) {
        var d = dOut
        var dTime: Tensor?, dContext: Tensor?
        if let downsampler = downsamplers.first, let input = saved.downsamplerInput {
            d += dSkips[resnets.count]
            d = downsampler.backward(d, input: input, gradients: &gradients)
        }
        for i in resnets.indices.reversed() {
            d += dSkips[i]     // this layer's output was also skip i
            if i < attentions.count {
                let (da, dc) = attentions[i].backward(d, saved: saved.attentions[i], gradients: &gradients)
                d = da
                dContext = accumulated(dContext, dc)
            }
            let (dr, dt) = resnets[i].backward(d, saved: saved.resnets[i], gradients: &gradients)
            d = dr
            dTime = accumulated(dTime, dt)
        }
        return (d, dTime!, dContext)
    }
}
