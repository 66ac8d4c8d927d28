import TensorCore

/// A fast look at latents without the VAE: a fixed linear map from the 4 latent channels to RGB.
///
/// SD 1.x's latent channels happen to line up roughly with colour: channel 0 with brightness,
/// channels 1-2 with warm/cool tints, channel 3 with blue-ish structure. The 4x3 matrix below is
/// the least-squares fit of decoded colours to latent values that the SD community uses for live
/// previews (`latent_rgb_factors`). It costs 12 multiply-adds per pixel instead of the decoder's
/// ~600,000, and gives a blurry but recognisable 64x64 picture.
public enum LatentPreview {
    /// rgb[k] = Σ_c latent[c] · factors[c][k]
    public static let factors: [[Float]] = [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ]

    /// `(1, 4, h, w)` latents at the UNet's scale → `(1, 3, h, w)` RGB in about [−1, 1].
    public static func rgb(_ latents: Tensor) -> Tensor {
        precondition(latents.rank == 4 && latents.shape[1] == 4, "latent preview needs (N, 4, h, w), got \(latents.shape)")
        let h = latents.shape[2], w = latents.shape[3], plane = h * w
        var out = Tensor.zeros([1, 3, h, w])
        for k in 0..<3 {
            for c in 0..<4 {
                let f = factors[c][k]
                for i in 0..<plane { out.scalars[k * plane + i] += latents.scalars[c * plane + i] * f }
            }
        }
        return out
    }
}
