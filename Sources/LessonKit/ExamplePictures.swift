import Foundation
import TensorCore

/// Pictures drawn by code, so the lessons have something to work on before anyone downloads
/// anything (and so no picture here has a licence question).
///
/// Every scene is a function from a pixel position to a colour, evaluated at 2x2 sub-pixels and
/// averaged for smooth (anti-aliased) edges. The result is a `(1, 3, H, W)` tensor in [−1, 1],
/// Stable Diffusion's pixel convention.
public enum ExamplePictures {
    /// A sunset over hills with a house and a tree: smooth gradients (where noise shows first),
    /// sharp edges and small details (which disappear first as noise grows).
    public static func hills(width: Int = 256, height: Int = 256) -> Tensor {
        render(width: width, height: height) { x, y in
            // x, y in [0, 1], y downwards.
            var color = mix(SIMD3(0.10, 0.15, 0.45), SIMD3(0.98, 0.60, 0.30), smoothstep(0.0, 0.62, y)) // sky
            let sun = hypot(x - 0.70, y - 0.42)
            color = mix(color, SIMD3(1.0, 0.85, 0.45), 0.35 * max(0, 1 - sun / 0.25))                  // glow
            if sun < 0.085 { color = SIMD3(1.0, 0.93, 0.60) }                                          // sun
            if y > 0.60 + 0.04 * sin(x * 9 + 1) + 0.02 * sin(x * 23) {                                  // far hills
                color = SIMD3(0.35, 0.28, 0.50)
            }
            let near = 0.74 + 0.06 * sin(x * 5.5 + 2.5)
            if y > near { color = mix(SIMD3(0.30, 0.60, 0.25), SIMD3(0.12, 0.35, 0.12), (y - near) / 0.3) } // near hill
            // The house: a wall, a roof, a door and a window.
            let wallTop = 0.66, wallBottom = 0.80, left = 0.18, right = 0.36
            if x > left && x < right && y > wallTop && y < wallBottom { color = SIMD3(0.85, 0.82, 0.75) }
            let roofHeight = 0.10, centre = (left + right) / 2
            if y <= wallTop && y > wallTop - roofHeight
                && abs(x - centre) < (right - left) / 2 * 1.15 * (y - (wallTop - roofHeight)) / roofHeight {
                color = SIMD3(0.65, 0.18, 0.15)
            }
            if x > 0.25 && x < 0.29 && y > 0.72 && y < wallBottom { color = SIMD3(0.40, 0.25, 0.15) }   // door
            if x > 0.31 && x < 0.345 && y > 0.69 && y < 0.725 { color = SIMD3(0.95, 0.85, 0.40) }       // lit window
            // The tree: a trunk and a round crown.
            if x > 0.555 && x < 0.575 && y > 0.66 && y < 0.80 { color = SIMD3(0.35, 0.22, 0.12) }
            if hypot(x - 0.565, y - 0.62) < 0.065 { color = SIMD3(0.15, 0.45, 0.18) }
            return color
        }
    }

    /// Evaluates `shade` (x, y in [0, 1], y downwards → RGB in [0, 1]) over the image with 2x2
    /// supersampling. Lessons draw their own pictures with it.
    public static func render(width: Int, height: Int, _ shade: (Double, Double) -> SIMD3<Double>) -> Tensor {
        precondition(width > 0 && height > 0, "picture size must be positive")
        var out = Tensor.zeros([1, 3, height, width])
        let plane = width * height
        for py in 0..<height {
            for px in 0..<width {
                var sum = SIMD3<Double>()
                for sy in 0..<2 {
                    for sx in 0..<2 {
                        sum += shade((Double(px) + 0.25 + 0.5 * Double(sx)) / Double(width),
                                     (Double(py) + 0.25 + 0.5 * Double(sy)) / Double(height))
                    }
                }
                let rgb = sum / 4
                for c in 0..<3 {
                    out.scalars[c * plane + py * width + px] = Float(rgb[c] * 2 - 1)   // [0, 1] → [−1, 1]
                }
            }
        }
        return out
    }

    static func mix(_ a: SIMD3<Double>, _ b: SIMD3<Double>, _ t: Double) -> SIMD3<Double> {
        let t = min(max(t, 0), 1)
        return a + (b - a) * t
    }

    static func smoothstep(_ e0: Double, _ e1: Double, _ x: Double) -> Double {
        let t = min(max((x - e0) / (e1 - e0), 0), 1)
        return t * t * (3 - 2 * t)
    }
}
