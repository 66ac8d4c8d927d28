import Foundation
import TensorCore

/// Turns the diffusion timestep into the vector that steers every ResNet block of the UNet.
///
/// Two steps, two diffusers modules:
///
///     features = sinusoid(t)                              time_proj (no weights): (N) → (N, 320)
///     emb = linear_2(silu(linear_1(features)))            time_embedding:   (N, 320) → (N, 1280)
///
/// The sinusoid is the Transformer's positional encoding (Vaswani et al., 2017) applied to the
/// timestep: 160 frequencies spaced geometrically from 1 to 1/10000, each giving a cosine and a
/// sine. Nearby timesteps get similar vectors, and the MLP learns what to do with them.
public struct TimestepEmbedding: Sendable {
    public let linear1: Linear   // (D_time, C); checkpoint key linear_1 (1280, 320 in SD 1.x)
    public let linear2: Linear   // (D_time, D_time); checkpoint key linear_2
    /// Width of the sinusoidal features (`block_out_channels[0]`: 320).
    public let channels: Int
    public let flipSinToCos: Bool
    public let downscaleFreqShift: Float

    /// Loads `linear_1` and `linear_2` from the `time_embedding` view.
    public init(_ weights: Weights, channels: Int, timeEmbeddingDim: Int,
                flipSinToCos: Bool, downscaleFreqShift: Float) throws {
        linear1 = try Linear(weights["linear_1"], inFeatures: channels, outFeatures: timeEmbeddingDim)
        linear2 = try Linear(weights["linear_2"], inFeatures: timeEmbeddingDim, outFeatures: timeEmbeddingDim)
        self.channels = channels
        self.flipSinToCos = flipSinToCos
        self.downscaleFreqShift = downscaleFreqShift
    }

    /// The embedding of one timestep for each of `batch` samples: `(batch, D_time)`.
    public func callAsFunction(_ timestep: Float, batch: Int) -> Tensor {
        // diffusers broadcasts one timestep to the whole batch (`timesteps.expand(N)`).
        let features = Self.sinusoid([Float](repeating: timestep, count: batch), dimension: channels,
                                     flipSinToCos: flipSinToCos, downscaleFreqShift: downscaleFreqShift)
        return linear2(linear1(features).silu())
    }

    /// Sinusoidal timestep features, diffusers' `get_timestep_embedding`: `(N)` → `(N, dimension)`.
    ///
    /// With `half = dimension / 2` and `i = 0..<half`:
    ///
    ///     frequency_i = exp(−ln(maxPeriod) · i / (half − downscaleFreqShift))
    ///     features    = [sin(t · frequency), cos(t · frequency)]     (swapped to [cos, sin] if flipSinToCos)
    ///
    /// SD uses `flipSinToCos = true`, `downscaleFreqShift = 0`, so frequencies run from 1 down to
    /// 10000^(−159/160). The arithmetic is done in Float32, in the same order as PyTorch, so the
    /// angles `t · frequency` (up to 999 radians) round alike; only PyTorch's vectorised `exp`,
    /// which is sometimes 1 ulp off, moves a few of them by up to 6e-5. Timesteps may be fractional.
    public static func sinusoid(_ timesteps: [Float], dimension: Int, flipSinToCos: Bool,
                                downscaleFreqShift: Float, maxPeriod: Float = 10000) -> Tensor {
        let half = dimension / 2
        let logPeriod = -logf(maxPeriod)
        let frequencies = (0..<half).map { i in expf(logPeriod * Float(i) / (Float(half) - downscaleFreqShift)) }
        // An odd dimension leaves the last column at zero, as diffusers pads it.
        var out = Tensor.zeros([timesteps.count, dimension])
        for (n, t) in timesteps.enumerated() {
            for i in 0..<half {
                let angle = t * frequencies[i]
                let (first, second) = flipSinToCos ? (cosf(angle), sinf(angle)) : (sinf(angle), cosf(angle))
                out[n, i] = first
                out[n, half + i] = second
            }
        }
        return out
    }
}

// MARK: - Training

extension TimestepEmbedding {
    /// What the training forward keeps: the inputs of linear_1, of the SiLU and of linear_2.
    public struct Saved: Sendable {
        let features: Tensor, hidden: Tensor, activated: Tensor
    }

    /// `callAsFunction` with one timestep per sample (training draws a different t for each),
    /// keeping what `backward` needs.
    public func trainingForward(_ timesteps: [Float]) -> (output: Tensor, saved: Saved) {
        let features = Self.sinusoid(timesteps, dimension: channels,
                                     flipSinToCos: flipSinToCos, downscaleFreqShift: downscaleFreqShift)
        let hidden = linear1(features)
        let activated = hidden.silu()
        return (linear2(activated), Saved(features: features, hidden: hidden, activated: activated))
    }

    /// The backward of `trainingForward`: linear_2, SiLU, linear_1. The sinusoid has no weights,
    /// and the timestep is not learned, so nothing flows further.
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) {
        let dActivated = linear2.backward(dOut, input: saved.activated, gradients: &gradients)
        _ = linear1.backward(saved.hidden.siluBackward(dActivated), input: saved.features, gradients: &gradients)
    }
}
