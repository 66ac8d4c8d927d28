import TensorCore

/// One resolution level of the VAE encoder: residual blocks, then (except at the last level) a
/// strided convolution that halves the height and width.
///
///     h = resnets.0(x)           C_in → C_out (1x1 shortcut when they differ)
///     h = resnets.1(h)           C_out → C_out
///     h = downsample(h)          (N, C_out, H, W) → (N, C_out, H/2, W/2)
///
/// The downsampler is diffusers' `Downsample2D` with `padding=0`: it pads the map with one row of
/// zeros at the bottom and one column at the right only, then applies a 3x3 convolution with
/// stride 2. The output size is `⌊(H + 1 − 3) / 2⌋ + 1 = H/2` for even `H`, and output pixel `i`
/// reads input rows `2i, 2i+1, 2i+2`. (Symmetric padding of 1 would also give `H/2` but read rows
/// `2i−1, 2i, 2i+1`: a shift of one pixel that the trained weights would not forgive.)
///
/// Checkpoint keys: `resnets.{j}`, `downsamplers.0.conv` (under `encoder.down_blocks.{i}`).
public struct DownEncoderBlock2D: Sendable {
    public let resnets: [ResnetBlock2D]     // layers_per_block blocks: (C_out, C_in, 3, 3) first, then (C_out, C_out, 3, 3)
    public let downsampler: Conv2d?         // (C_out, C_out, 3, 3), stride 2; named downsamplers.0.conv

    /// - Parameters:
    ///   - layers: residual blocks (`layers_per_block`, 2 in SD 1.x).
    ///   - addDownsample: false at the last (smallest) level.
    public init(_ weights: Weights, inChannels: Int, outChannels: Int, layers: Int, groups: Int,
                addDownsample: Bool) throws {
        resnets = try (0..<layers).map { j in
            try ResnetBlock2D(weights["resnets.\(j)"], inChannels: j == 0 ? inChannels : outChannels,
                              outChannels: outChannels, timeEmbeddingDim: nil, groups: groups, eps: 1e-6)
        }
        downsampler = addDownsample
            ? try Conv2d(weights["downsamplers.0"]["conv"], inChannels: outChannels, outChannels: outChannels,
                         kernelSize: 3, stride: 2, padding: 0)
            : nil
    }

    /// `(N, C_in, H, W)` → `(N, C_out, H/2, W/2)`, or `(N, C_out, H, W)` at the last level.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for resnet in resnets { h = resnet(h) }
        if let downsampler {
            h = downsampler(h.padded(right: 1, bottom: 1))
        }
        return h
    }
}

extension Tensor {
    /// Zero padding on the right and bottom only: `(N, C, H, W)` → `(N, C, H + bottom, W + right)`.
    ///
    /// TensorCore's `conv2d` pads all four sides equally; the encoder's downsampler needs this
    /// one-sided padding (PyTorch's `F.pad(x, (0, right, 0, bottom))`).
    func padded(right: Int, bottom: Int) -> Tensor {
        precondition(rank == 4 && right >= 0 && bottom >= 0, "padded(right:bottom:) needs (N, C, H, W), got \(shape)")
        let planes = shape[0] * shape[1], height = shape[2], width = shape[3]
        let newHeight = height + bottom, newWidth = width + right
        var out = Tensor.zeros([shape[0], shape[1], newHeight, newWidth])
        withUnsafePointer { x in
            out.withUnsafeMutablePointer { y in
                for p in 0..<planes {
                    for row in 0..<height {
                        (y + (p * newHeight + row) * newWidth).update(from: x + (p * height + row) * width, count: width)
                    }
                }
            }
        }
        return out
    }
}

// MARK: - Training

extension DownEncoderBlock2D {
    /// What the training forward keeps.
    public struct Saved: Sendable {
        let resnets: [ResnetBlock2D.Saved]
        let padded: Tensor?                  // the downsampler's input, padded right and bottom
    }

    /// `callAsFunction(x)`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor) -> (output: Tensor, saved: Saved) {
        let (h, saved) = resnets.trainingForward(x)
        guard let downsampler else { return (h, Saved(resnets: saved, padded: nil)) }
        let padded = h.padded(right: 1, bottom: 1)
        return (downsampler(padded), Saved(resnets: saved, padded: padded))
    }

    /// The backward of `trainingForward`. The padding added zeros, so its gradient just drops
    /// the extra column and row.
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) -> Tensor {
        var d = dOut
        if let downsampler, let padded = saved.padded {
            d = downsampler.backward(d, input: padded, gradients: &gradients).cropped(right: 1, bottom: 1)
        }
        return resnets.backward(d, saved: saved.resnets, gradients: &gradients)
    }
}

extension Tensor {
    /// `(N, C, H, W)` without its last `right` columns and `bottom` rows: the gradient of `padded`.
    func cropped(right: Int, bottom: Int) -> Tensor {
        let planes = shape[0] * shape[1], height = shape[2], width = shape[3]
        let newHeight = height - bottom, newWidth = width - right
        var out = [Float]()
        out.reserveCapacity(planes * newHeight * newWidth)
        for p in 0..<planes {
            for row in 0..<newHeight { out += scalars[((p * height + row) * width)..<((p * height + row) * width + newWidth)] }
        }
        return Tensor(shape: [shape[0], shape[1], newHeight, newWidth], scalars: out)
    }
}
