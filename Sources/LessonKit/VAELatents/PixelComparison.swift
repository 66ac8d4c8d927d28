import Foundation
import TensorCore

/// How much a picture changed, as image people measure it: on a 0-1 scale, each picture first
/// mapped from [−1, 1] with `(v + 1) / 2` and clamped to [0, 1].
public enum PixelComparison {
    /// The mean squared difference of two pictures of the same shape, on the 0-1 scale.
    public static func meanSquaredError(_ a: Tensor, _ b: Tensor) -> Double {
        precondition(a.count == b.count, "pictures of different sizes")
        var sum = 0.0
        for (u, v) in zip(a.scalars, b.scalars) {
            let d = Double(unit(u) - unit(v))
            sum += d * d
        }
        return sum / Double(a.count)
    }

    /// The peak signal-to-noise ratio in dB: `10 · log₁₀(1 / MSE)` with the peak 1 of the 0-1
    /// scale; an MSE under 10⁻¹² counts as 10⁻¹² (120 dB), so identical pictures stay finite.
    public static func peakSignalToNoise(_ a: Tensor, _ b: Tensor) -> Double {
        10 * log10(1 / max(meanSquaredError(a, b), 1e-12))
    }

    /// `(H, W)`: the absolute difference of two `(1, 3, H, W)` pictures averaged over the colour
    /// channels, on the 0-1 scale.
    public static func differenceMap(_ a: Tensor, _ b: Tensor) -> Tensor {
        let (height, width) = (a.shape[2], a.shape[3]), plane = height * width
        var out = Tensor.zeros([height, width])
        for c in 0..<3 {
            for i in 0..<plane {
                out.scalars[i] += abs(unit(a.scalars[c * plane + i]) - unit(b.scalars[c * plane + i])) / 3
            }
        }
        return out
    }

    /// [−1, 1] → [0, 1], clamped.
    static func unit(_ v: Float) -> Float { min(max((v + 1) / 2, 0), 1) }
}
