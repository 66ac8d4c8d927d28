import TensorCore

/// A fast look at latents without the VAE: a linear map from the 4 latent channels to RGB.
///
/// SD 1.x's latent channels happen to line up roughly with colour: channel 0 with brightness,
/// channels 1-2 with warm/cool tints, channel 3 with blue-ish structure. `sd15` is the
/// least-squares fit of decoded colours to latent values that the SD community uses for live
/// previews (`latent_rgb_factors`). It costs 12 multiply-adds per pixel instead of the decoder's
/// ~600,000, and gives a blurry but recognisable 64x64 picture. Another VAE's channels mean other
/// things, so its map is fitted the same way (`fitted(vae:pictures:)`).
///
/// ```swift
/// let preview = try pipeline.latentPreview()
/// let rgb = preview.rgb(latents)                 // (1, 4, h, w) → (1, 3, h, w), about [−1, 1]
/// ```
public struct LatentPreview: Sendable {
    /// rgb[k] = Σ_c latent[c] · factors[c][k] + bias[k]
    public let factors: [[Float]]
    public let bias: [Float]

    public init(factors: [[Float]], bias: [Float] = [0, 0, 0]) {
        precondition(factors.count == 4 && factors.allSatisfy { $0.count == 3 } && bias.count == 3,
                     "a latent preview maps 4 channels to 3 colours")
        self.factors = factors
        self.bias = bias
    }

    /// SD 1.x's map.
    public static let sd15 = LatentPreview(factors: [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ])

    /// `(1, 4, h, w)` latents at the UNet's scale → `(1, 3, h, w)` RGB in about [−1, 1].
    public func rgb(_ latents: Tensor) -> Tensor {
        precondition(latents.rank == 4 && latents.shape[1] == 4, "latent preview needs (N, 4, h, w), got \(latents.shape)")
        let h = latents.shape[2], w = latents.shape[3], plane = h * w
        var out = Tensor.zeros([1, 3, h, w])
        for k in 0..<3 {
            for i in 0..<plane { out.scalars[k * plane + i] = bias[k] }
            for c in 0..<4 {
                let f = factors[c][k]
                for i in 0..<plane { out.scalars[k * plane + i] += latents.scalars[c * plane + i] * f }
            }
        }
        return out
    }

    /// SD 1.x's map (the default of the commands that show latents).
    public static func rgb(_ latents: Tensor) -> Tensor { sd15.rgb(latents) }

    /// The map fitted to `vae` by least squares: every latent pixel of `pictures` `(N, 3, H, W)`
    /// (scaled as the UNet sees it) against the mean colour of the patch of pixels it encodes,
    /// with a constant term. Solves the 5x5 normal equations `(XᵀX) β = XᵀY` in Double; nil when
    /// the latents do not vary enough to fit anything (a broken VAE).
    public static func fitted(vae: AutoencoderKL, pictures: Tensor) throws -> LatentPreview? {
        let latents = try vae.encode(pictures).mean * vae.scalingFactor
        let (n, h, w) = (latents.shape[0], latents.shape[2], latents.shape[3])
        let (pictureHeight, pictureWidth) = (pictures.shape[2], pictures.shape[3])
        let (patchHeight, patchWidth) = (pictureHeight / h, pictureWidth / w)
        var gram = [[Double]](repeating: [Double](repeating: 0, count: 5), count: 5)
        var moments = [[Double]](repeating: [Double](repeating: 0, count: 3), count: 5)
        for image in 0..<n {
            for y in 0..<h {
                for x in 0..<w {
                    // x = (the 4 channels, 1); target = the patch's mean colour.
                    let features = (0..<4).map { Double(latents.scalars[((image * 4 + $0) * h + y) * w + x]) } + [1]
                    let colour = (0..<3).map { k -> Double in
                        var sum = 0.0
                        for py in 0..<patchHeight {
                            for px in 0..<patchWidth {
                                sum += Double(pictures.scalars[((image * 3 + k) * pictureHeight + y * patchHeight + py) * pictureWidth
                                                               + x * patchWidth + px])
                            }
                        }
                        return sum / Double(patchHeight * patchWidth)
                    }
                    for i in 0..<5 {
                        for j in 0..<5 { gram[i][j] += features[i] * features[j] }
                        for k in 0..<3 { moments[i][k] += features[i] * colour[k] }
                    }
                }
            }
        }
        guard let solution = solve(gram, moments) else { return nil }
        return LatentPreview(factors: (0..<4).map { c in (0..<3).map { Float(solution[c][$0]) } },
                             bias: (0..<3).map { Float(solution[4][$0]) })
    }

    /// `A X = B` by Gaussian elimination with partial pivoting; nil when A is singular.
    static func solve(_ a: [[Double]], _ b: [[Double]]) -> [[Double]]? {
        var a = a, b = b
        let n = a.count
        for column in 0..<n {
            let pivot = (column..<n).max { abs(a[$0][column]) < abs(a[$1][column]) }!
            guard abs(a[pivot][column]) > 1e-12 else { return nil }
            a.swapAt(column, pivot)
            b.swapAt(column, pivot)
            for row in 0..<n where row != column {
                let factor = a[row][column] / a[column][column]
                if factor == 0 { continue }
                for j in column..<n { a[row][j] -= factor * a[column][j] }
                for k in 0..<b[row].count { b[row][k] -= factor * b[column][k] }
            }
        }
        return (0..<n).map { row in b[row].map { $0 / a[row][row] } }
    }
}

extension StableDiffusionPipeline {
    /// The latent preview for this model: SD 1.x's map, or, for the shapes model (whose latents
    /// mean other things), the map fitted to its VAE on held-out shapes pictures.
    public func latentPreview() throws -> LatentPreview {
        guard configuration.vae.blockOutChannels == TinyShapesModel.vae.blockOutChannels,
              configuration.vae.layersPerBlock == TinyShapesModel.vae.layersPerBlock else { return .sd15 }
        return try LatentPreview.fitted(vae: vae(), pictures: TinyShapesModel.heldOut.batch(0..<64).pixels) ?? .sd15
    }
}
