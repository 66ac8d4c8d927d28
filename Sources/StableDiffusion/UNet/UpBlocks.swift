import TensorCore

/// One entry of the UNet's `up_blocks`: a level with attention or without, as `up_block_types`
/// in the configuration says.
public enum UNetUpBlock: Sendable {
    case crossAttention(CrossAttnUpBlock2D)   // "CrossAttnUpBlock2D"
    case plain(UpBlock2D)                     // "UpBlock2D"

    /// Loads `up_blocks.<level>` as the type the configuration names.
    public init(_ weights: Weights, configuration c: UNetConfiguration, level: Int) throws {
        switch c.upBlockTypes[level] {
        case "CrossAttnUpBlock2D":
            self = .crossAttention(try CrossAttnUpBlock2D(weights, configuration: c, level: level))
        case "UpBlock2D":
            self = .plain(try UpBlock2D(weights, configuration: c, level: level))
        case let other:
            throw UNetConfigurationError.unsupported(key: "up_block_types", value: other,
                                                     supported: "CrossAttnUpBlock2D, UpBlock2D")
        }
    }

    /// How many skip tensors the block consumes: one per ResNet.
    public var resnetCount: Int { level.resnets.count }

    /// The block's output (see the two block types).
    public func callAsFunction(_ x: Tensor, skips: [Tensor], timeEmbedding: Tensor, context: Tensor,
                               upsampleSize: (height: Int, width: Int)?,
                               observer: CrossAttentionObserver?) -> Tensor {
        switch self {
        case .crossAttention(let block):
            return block(x, skips: skips, timeEmbedding: timeEmbedding, context: context,
                         upsampleSize: upsampleSize, observer: observer)
        case .plain(let block):
            return block(x, skips: skips, timeEmbedding: timeEmbedding, upsampleSize: upsampleSize)
        }
    }
}

// MARK: - Training

extension UNetUpBlock {
    /// The block's ResNets and transformers, whichever type it is.
    public var level: any UNetLevel {
        switch self {
        case .crossAttention(let block): return block
        case .plain(let block): return block
        }
    }

    public var resnets: [ResnetBlock2D] { level.resnets }
    public var attentions: [Transformer2DModel] { level.attentions }

    public var upsamplers: [Upsample2D] {
        switch self {
        case .crossAttention(let block): return block.upsamplers
        case .plain(let block): return block.upsamplers
        }
    }

    /// What the training forward keeps.
    public struct Saved: Sendable {
        let resnets: [ResnetBlock2D.Saved]
        let attentions: [Transformer2DModel.Saved]
        let runningChannels: [Int]             // channels of the running map before each concatenation
        let upsamplerInput: Tensor?
    }

    /// `callAsFunction`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor, skips: [Tensor], timeEmbedding: Tensor, context: Tensor,
                                upsampleSize: (height: Int, width: Int)?) -> (output: Tensor, saved: Saved) {
        var x = x
        var resnetsSaved: [ResnetBlock2D.Saved] = [], attentionsSaved: [Transformer2DModel.Saved] = []
        var runningChannels: [Int] = []
        for (i, skip) in skips.reversed().enumerated() {
            runningChannels.append(x.shape[1])
            let (h, s) = resnets[i].trainingForward(Tensor.concatenateChannels(x, skip), timeEmbedding: timeEmbedding)
            resnetsSaved.append(s)
            x = h
            if i < attentions.count {
                let (a, sa) = attentions[i].trainingForward(x, context: context)
                attentionsSaved.append(sa)
                x = a
            }
        }
        var upsamplerInput: Tensor?
        for upsampler in upsamplers {
            upsamplerInput = x
            x = upsampler(x, outputSize: upsampleSize)
        }
        return (x, Saved(resnets: resnetsSaved, attentions: attentionsSaved, runningChannels: runningChannels,
                         upsamplerInput: upsamplerInput))
    }

    /// The backward of `trainingForward`. A concatenation's gradient splits along the channels:
    /// the first part goes on down the running map, the rest to the skip it brought in.
    ///
    /// - Returns: the gradients of the input, of each skip (in the order given), of the time
    ///   embedding and of the text context.
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients)
        -> (dx: Tensor, dSkips: [Tensor], dTimeEmbedding: Tensor, dContext: Tensor?) {
        var d = dOut
        if let upsampler = upsamplers.first, let input = saved.upsamplerInput {
            d = upsampler.backward(d, input: input, gradients: &gradients)
        }
        var dSkips: [Tensor] = []
        var dTime: Tensor?, dContext: Tensor?
        for i in resnets.indices.reversed() {
            if i < attentions.count {
                let (da, dc) = attentions[i].backward(d, saved: saved.attentions[i], gradients: &gradients)
                d = da
                dContext = accumulated(dContext, dc)
            }
            let (dr, dt) = resnets[i].backward(d, saved: saved.resnets[i], gradients: &gradients)
            dTime = accumulated(dTime, dt)
            let (running, skip) = dr.splitChannels(at: saved.runningChannels[i])
            d = running
            // ResNet i took skip count − 1 − i, so going back from the last ResNet to the first
            // visits the skips in the order they were given.
            dSkips.append(skip)
        }
        return (d, dSkips, dTime!, dContext)
    }
}
