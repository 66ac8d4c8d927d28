import Foundation
import TensorCore

/// One picture of the tiny model's world: a saturated shape on a plain light background, and the
/// caption that describes it ("a red circle on the left").
///
/// A scene is drawn by a function from a position (x, y in [0, 1], y downwards) to a colour,
/// averaged over 4x4 sub-pixels so that edges are smooth, and stored as a `(1, 3, size, size)`
/// tensor in [−1, 1], Stable Diffusion's pixel convention.
///
/// ```swift
/// let scene = ShapeScene(colour: .red, shape: .circle, position: .left)
/// scene.caption                    // "a red circle on the left"
/// let pixels = scene.render()      // (1, 3, 64, 64)
/// ```
public struct ShapeScene: Equatable, Sendable {
    public enum Colour: String, CaseIterable, Sendable {
        case red, green, blue, yellow

        /// The colour in RGB, 0-1: saturated, so that a shape stands out from any light background.
        public var rgb: SIMD3<Double> {
            switch self {
            case .red: SIMD3(0.86, 0.16, 0.14)
            case .green: SIMD3(0.18, 0.66, 0.22)
            case .blue: SIMD3(0.16, 0.32, 0.88)
            case .yellow: SIMD3(0.96, 0.82, 0.12)
            }
        }
    }

    public enum Shape: String, CaseIterable, Sendable { case circle, square, triangle }

    public enum Position: String, CaseIterable, Sendable {
        case centre, left, right, top, bottom

        /// The words a caption uses: none for the centre ("a blue triangle").
        public var phrase: String? {
            switch self {
            case .centre: nil
            case .left: "on the left"
            case .right: "on the right"
            case .top: "at the top"
            case .bottom: "at the bottom"
            }
        }

        /// Where the shape's centre sits, before jitter: a quarter of the way in from an edge.
        public var point: SIMD2<Double> {
            switch self {
            case .centre: SIMD2(0.5, 0.5)
            case .left: SIMD2(0.27, 0.5)
            case .right: SIMD2(0.73, 0.5)
            case .top: SIMD2(0.5, 0.27)
            case .bottom: SIMD2(0.5, 0.73)
            }
        }
    }

    public var colour: Colour
    public var shape: Shape
    public var position: Position
    /// The shape's centre, x and y in [0, 1] (the position's point plus jitter).
    public var centre: SIMD2<Double>
    /// Half the shape's width, as a fraction of the picture's side.
    public var radius: Double
    /// The shape's actual colour: `colour.rgb` with a little variation.
    public var fill: SIMD3<Double>
    /// The background's grey level, from light grey to white.
    public var background: Double

    /// A scene at the position's point, of middle size, in the colour's exact shade, on white.
    public init(colour: Colour, shape: Shape, position: Position = .centre) {
        self.init(colour: colour, shape: shape, position: position, centre: position.point, radius: 0.18,
                  fill: colour.rgb, background: 1)
    }

    public init(colour: Colour, shape: Shape, position: Position, centre: SIMD2<Double>, radius: Double,
                fill: SIMD3<Double>, background: Double) {
        self.colour = colour
        self.shape = shape
        self.position = position
        self.centre = centre
        self.radius = radius
        self.fill = fill
        self.background = background
    }

    /// "a red circle on the left", "a blue triangle".
    public var caption: String {
        (["a", colour.rawValue, shape.rawValue] + (position.phrase.map { [$0] } ?? [])).joined(separator: " ")
    }

    /// Whether the point (x, y) lies inside the shape.
    public func contains(_ x: Double, _ y: Double) -> Bool {
        let dx = x - centre.x, dy = y - centre.y
        switch shape {
        case .circle:
            return dx * dx + dy * dy < radius * radius
        case .square:
            // Sides of 1.8 radius: about the circle's area, so no shape is the "big" one.
            return abs(dx) < 0.9 * radius && abs(dy) < 0.9 * radius
        case .triangle:
            // Pointing up: apex one radius above the centre, base 0.8 radius below, as wide as it is tall.
            let top = -radius, bottom = 0.8 * radius
            guard dy >= top, dy <= bottom else { return false }
            return abs(dx) <= 0.5 * 1.8 * radius * (dy - top) / (bottom - top)
        }
    }

    /// The picture, `(1, 3, size, size)` in [−1, 1].
    public func render(size: Int = 64) -> Tensor {
        let samples = 4, background = SIMD3(repeating: self.background)
        var pixels = [Float](repeating: 0, count: 3 * size * size)
        for row in 0..<size {
            for column in 0..<size {
                var covered = 0
                for sy in 0..<samples {
                    for sx in 0..<samples {
                        let x = (Double(column) + (Double(sx) + 0.5) / Double(samples)) / Double(size)
                        let y = (Double(row) + (Double(sy) + 0.5) / Double(samples)) / Double(size)
                        if contains(x, y) { covered += 1 }
                    }
                }
                let share = Double(covered) / Double(samples * samples)
                let colour = fill * share + background * (1 - share)
                for channel in 0..<3 { pixels[(channel * size + row) * size + column] = Float(2 * colour[channel] - 1) }
            }
        }
        return Tensor(shape: [1, 3, size, size], scalars: pixels)
    }
}
