import TensorCore

/// One resolution level of the VAE decoder: residual blocks, then (except at the last level)
/// nearest-neighbour upsampling by 2 followed by a 3x3 convolution.
///
///     h = resnets.0(x)           C_in → C_out (1x1 shortcut when they differ)
///     h = resnets.1(h)           C_out → C_out
///     h = resnets.2(h)           C_out → C_out   (one block more than the encoder level)
///     h = conv(upsample_2x(h))   (N, C_out, H, W) → (N, C_out, 2H, 2W)
///
/// Copying each pixel into a 2x2 block makes the map bigger but blocky; the convolution after it
/// learns to smooth the blocks into detail. (A transposed convolution would do both in one step,
/// but tends to leave checkerboard patterns.)
///
/// Checkpoint keys: `resnets.{j}`, `upsamplers.0.conv` (under `decoder.up_blocks.{i}`).
public struct UpDecoderBlock2D: Sendable {
    public let resnets: [ResnetBlock2D]     // layers_per_block + 1 blocks: (C_out, C_in, 3, 3) first, then (C_out, C_out, 3, 3)
    public let upsampler: Conv2d?           // (C_out, C_out, 3, 3); named upsamplers.0.conv

    /// - Parameters:
    ///   - layers: residual blocks (`layers_per_block + 1`, 3 in SD 1.x).
    ///   - addUpsample: false at the last (full-resolution) level.
    public init(_ weights: Weights, inChannels: Int, outChannels: Int, layers: Int, groups: Int,
                addUpsample: Bool) throws {
        resnets = try (0..<layers).map { j in
            try ResnetBlock2D(weights["resnets.\(j)"], inChannels: j == 0 ? inChannels : outChannels,
                              outChannels: outChannels, timeEmbeddingDim: nil, groups: groups, eps: 1e-6)
        }
        upsampler = addUpsample
            ? try Conv2d(weights["upsamplers.0"]["conv"], inChannels: outChannels, outChannels: outChannels,
                         kernelSize: 3, padding: 1)
            : nil
    }

    /// `(N, C_in, H, W)` → `(N, C_out, 2H, 2W)`, or `(N, C_out, H, W)` at the last level.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for resnet in resnets { h = resnet(h) }
        if let upsampler {
            h = upsampler(h.upsampledNearest2x())
        }
        return h
    }
}

// MARK: - Training

extension UpDecoderBlock2D {
    /// What the training forward keeps.
    public struct Saved: Sendable {
        let resnets: [ResnetBlock2D.Saved]
        let upsampled: Tensor?               // the upsampler's input, doubled
    }

    /// `callAsFunction(x)`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor) -> (output: Tensor, saved: Saved) {
        let (h, saved) = resnets.trainingForward(x)
        guard let upsampler else { return (h, Saved(resnets: saved, upsampled: nil)) }
        let upsampled = h.upsampledNearest2x()
        return (upsampler(upsampled), Saved(resnets: saved, upsampled: upsampled))
    }

    /// The backward of `trainingForward`.
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) -> Tensor {
        var d = dOut
        if let upsampler, let upsampled = saved.upsampled {
            d = upsampler.backward(d, input: upsampled, gradients: &gradients)
            d = upsampleNearestBackward(d, inputShape: [d.shape[0], d.shape[1], d.shape[2] / 2, d.shape[3] / 2])
        }
        return resnets.backward(d, saved: saved.resnets, gradients: &gradients)
    }
}
