import Foundation
import TensorCore

/// The lesson's "training set": eight small pictures drawn by code, each with a one-word-per-idea
/// label so the text can steer the sampler.
///
/// Each picture is a function from a position (x, y in [0, 1], y downwards) to a colour,
/// evaluated at 2x2 sub-pixels for smooth edges, and stored as a `(1, 3, size, size)` tensor in
/// [−1, 1], Stable Diffusion's pixel convention.
public struct PictureSet {
    /// One picture and its caption.
    public struct Picture {
        /// The caption the text can match, such as "sun over sea".
        public let label: String
        /// The picture, `(1, 3, size, size)` in [−1, 1].
        public let pixels: Tensor
    }

    /// The side of every picture in pixels.
    public let size: Int
    /// The eight pictures, in a fixed order.
    public let pictures: [Picture]

    /// D = 3 · size²: the numbers in one picture.
    public var dimensions: Int { 3 * size * size }

    /// √D: the length of pure noise ε ~ N(0, I_D), since E‖ε‖² = D. This is the radius of the
    /// sphere the noise spreads x_t over, against which the pictures' distances are measured.
    public var noiseRadius: Double { Double(dimensions).squareRoot() }

    /// All pictures as one matrix, one flattened picture per row: (N, 3·size·size).
    public var matrix: Tensor {
        Tensor(shape: [pictures.count, 3 * size * size], scalars: pictures.flatMap(\.pixels.scalars))
    }

    /// The indices of the pictures whose label contains every word of `text`.
    public func indices(matching text: String) -> [Int] {
        let words = text.lowercased().split(separator: " ").map(String.init)
        return pictures.indices.filter { i in
            let label = pictures[i].label.split(separator: " ").map(String.init)
            return words.allSatisfy(label.contains)
        }
    }

    /// Draws the eight pictures at `size` x `size` pixels.
    public init(size: Int) {
        self.size = size
        typealias Color = SIMD3<Double>
        let sky = Color(0.55, 0.75, 0.95), night = Color(0.05, 0.07, 0.20), grass = Color(0.25, 0.55, 0.22)
        let sea = Color(0.10, 0.35, 0.65), sand = Color(0.93, 0.82, 0.55), sun = Color(1.0, 0.82, 0.25)
        func disc(_ x: Double, _ y: Double, _ cx: Double, _ cy: Double, _ r: Double) -> Bool { hypot(x - cx, y - cy) < r }
        let scenes: [(String, (Double, Double) -> Color)] = [
            ("sun over sea", { x, y in
                if y > 0.62 { return ExamplePictures.mix(sea, Color(0.05, 0.2, 0.45), (y - 0.62) / 0.38) }
                return disc(x, y, 0.5, 0.45, 0.16) ? sun : ExamplePictures.mix(Color(0.98, 0.62, 0.35), sky, 1 - y / 0.62)
            }),
            ("moon over sea", { x, y in
                if y > 0.62 { return Color(0.03, 0.10, 0.25) }
                if disc(x, y, 0.62, 0.28, 0.12) && !disc(x, y, 0.68, 0.24, 0.10) { return Color(0.95, 0.95, 0.80) }
                return night
            }),
            ("tree on grass", { x, y in
                if disc(x, y, 0.5, 0.38, 0.22) { return Color(0.10, 0.42, 0.15) }
                if abs(x - 0.5) < 0.05 && y > 0.5 && y < 0.78 { return Color(0.40, 0.25, 0.12) }
                return y > 0.72 ? grass : sky
            }),
            ("house on grass", { x, y in
                if x > 0.28 && x < 0.72 && y > 0.48 && y < 0.8 {
                    return x > 0.44 && x < 0.56 && y > 0.62 ? Color(0.40, 0.25, 0.15) : Color(0.90, 0.86, 0.76)
                }
                if y <= 0.48 && y > 0.22 && abs(x - 0.5) < 0.27 * (y - 0.22) / 0.26 { return Color(0.70, 0.18, 0.15) }
                return y > 0.75 ? grass : sky
            }),
            ("red circle", { x, y in disc(x, y, 0.5, 0.5, 0.3) ? Color(0.85, 0.15, 0.15) : Color(0.95, 0.95, 0.92) }),
            ("blue square", { x, y in
                abs(x - 0.5) < 0.28 && abs(y - 0.5) < 0.28 ? Color(0.15, 0.30, 0.85) : Color(0.95, 0.95, 0.92)
            }),
            ("boat on sea", { x, y in
                if y > 0.60 && y < 0.70 && abs(x - 0.5) < 0.30 - (y - 0.60) * 1.5 { return Color(0.45, 0.25, 0.12) }
                if x > 0.48 && x < 0.5 && y > 0.2 && y <= 0.6 { return Color(0.3, 0.2, 0.1) }
                if x > 0.51 && y > 0.22 && y < 0.56 && (x - 0.51) < 0.25 * (y - 0.22) / 0.34 { return .one }
                return y > 0.68 ? sea : sky
            }),
            ("palm on sand", { x, y in
                let trunk = 0.5 + 0.08 * (y - 0.3) * (y - 0.3) * 4
                if abs(x - trunk) < 0.035 && y > 0.3 && y < 0.8 { return Color(0.50, 0.33, 0.15) }
                for angle in stride(from: 0.2, to: 3.0, by: 0.55) {
                    let dx = x - 0.5, dy = y - 0.3
                    let along = dx * cos(angle) - dy * sin(angle), across = dx * sin(angle) + dy * cos(angle)
                    if along > 0 && along < 0.24 && abs(across + 2 * along * along) < 0.03 { return Color(0.15, 0.55, 0.20) }
                    if along < 0 && along > -0.24 && abs(across - 2 * along * along) < 0.03 && angle < 1.0 {
                        return Color(0.15, 0.55, 0.20)
                    }
                }
                return y > 0.75 ? sand : sky
            }),
        ]
        pictures = scenes.map { Picture(label: $0.0, pixels: ExamplePictures.render(width: size, height: size, $0.1)) }
    }
}
