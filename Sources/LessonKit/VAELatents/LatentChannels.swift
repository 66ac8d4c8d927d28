import TensorCore

/// The channels of a latent, one at a time.
public enum LatentChannels {
    /// The channels of a `(1, C, h, w)` tensor, each `(1, 1, h, w)`.
    public static func split(_ z: Tensor) -> [Tensor] {
        let plane = z.shape[2] * z.shape[3]
        return (0..<z.shape[1]).map { c in
            Tensor(shape: [1, 1, z.shape[2], z.shape[3]], scalars: Array(z.scalars[(c * plane)..<((c + 1) * plane)]))
        }
    }
}
