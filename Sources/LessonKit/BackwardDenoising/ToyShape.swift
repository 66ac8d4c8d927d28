import Foundation

/// The 2-D "data sets" teachers draw on the board: a shape made of points, small enough that the
/// whole reverse process fits in one scatter plot.
public enum ToyShape: String, CaseIterable, Sendable {
    case spiral, smiley

    /// About `count` points of the shape, in roughly [−1.5, 1.5]² (so their spread is close to the
    /// unit variance the noise schedule assumes). Positions are fixed; no randomness.
    public func points(count: Int) -> [SIMD2<Float>] {
        switch self {
        case .spiral:
            // r grows with the angle: two and a half turns.
            return (0..<count).map { i in
                let angle = 0.6 + 5 * Double.pi * Double(i) / Double(count - 1)
                let radius = 0.08 + 1.4 * angle / (5 * Double.pi + 0.6)
                return SIMD2(Float(radius * cos(angle)), Float(radius * sin(angle)))
            }
        case .smiley:
            var points: [SIMD2<Float>] = []
            let face = count / 2, mouth = count / 4, eye = (count - face - mouth) / 2
            for i in 0..<face {                                   // the outline of the face
                let angle = 2 * Double.pi * Double(i) / Double(face)
                points.append(SIMD2(Float(1.3 * cos(angle)), Float(1.3 * sin(angle))))
            }
            for i in 0..<mouth {                                  // the smile: the lower arc
                let angle = Double.pi * (1.15 + 0.7 * Double(i) / Double(mouth - 1))
                points.append(SIMD2(Float(0.75 * cos(angle)), Float(0.75 * sin(angle) + 0.05)))
            }
            for centre in [SIMD2<Double>(-0.45, 0.45), SIMD2(0.45, 0.45)] {   // two eyes: small filled discs
                for i in 0..<eye {
                    // A sunflower pattern fills a disc evenly without random numbers.
                    let r = 0.16 * (Double(i) / Double(eye)).squareRoot(), angle = Double(i) * 2.39996
                    points.append(SIMD2(Float(centre.x + r * cos(angle)), Float(centre.y + r * sin(angle))))
                }
            }
            return points
        }
    }
}
