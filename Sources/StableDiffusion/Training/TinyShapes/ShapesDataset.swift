import TensorCore

/// The tiny model's training data: an endless, reproducible stream of `ShapeScene`s.
///
/// Scene `i` of seed `s` is always the same picture: its colour, shape and position are drawn
/// uniformly, then a little jitter in place, size, shade and background, from a random stream that
/// depends only on (s, i). Two combinations never appear, in any position: a **green triangle** and
/// a **red square**. The model sees green things and triangles, red things and squares, but never
/// those pairs, so drawing them shows it composes what it learned instead of copying a picture.
///
/// ```swift
/// let data = ShapesDataset(seed: 0)
/// let scene = data.scene(7)        // e.g. a yellow square at the top
/// let (pixels, captions) = data.batch(0..<32)
/// ```
public struct ShapesDataset: Sendable {
    /// The (colour, shape) pairs that training never shows.
    public static let leftOut: [(ShapeScene.Colour, ShapeScene.Shape)] = [(.green, .triangle), (.red, .square)]

    public static func isLeftOut(_ colour: ShapeScene.Colour, _ shape: ShapeScene.Shape) -> Bool {
        leftOut.contains { $0 == colour && $1 == shape }
    }

    /// Every caption of the grammar: 4 colours × 3 shapes × 5 positions, the left-out pairs included.
    public static var allCaptions: [String] {
        ShapeScene.Colour.allCases.flatMap { colour in ShapeScene.Shape.allCases.flatMap { shape in
            ShapeScene.Position.allCases.map { ShapeScene(colour: colour, shape: shape, position: $0).caption }
        }}
    }

    /// The (colour, shape) pairs training draws from: all but the left-out ones.
    public static let trainingPairs: [(ShapeScene.Colour, ShapeScene.Shape)] = ShapeScene.Colour.allCases.flatMap { colour in
        ShapeScene.Shape.allCases.filter { !isLeftOut(colour, $0) }.map { (colour, $0) }
    }

    public let seed: UInt64
    /// The pictures' side in pixels.
    public let size: Int

    public init(seed: UInt64, size: Int = 64) {
        self.seed = seed
        self.size = size
    }

    /// Scene number `index`.
    public func scene(_ index: Int) -> ShapeScene {
        var random = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(truncatingIfNeeded: index))
        let (colour, shape) = Self.trainingPairs[random.below(Self.trainingPairs.count)]
        let position = ShapeScene.Position.allCases[random.below(ShapeScene.Position.allCases.count)]
        return Self.jittered(colour: colour, shape: shape, position: position, random: &random)
    }

    /// A scene of the given kind with this dataset's kind of variation (number `index` of its own stream).
    public func scene(colour: ShapeScene.Colour, shape: ShapeScene.Shape, position: ShapeScene.Position, index: Int) -> ShapeScene {
        var random = SplitMix64(seed: ~(seed &* 0x9E37_79B9_7F4A_7C15) &+ UInt64(truncatingIfNeeded: index))
        return Self.jittered(colour: colour, shape: shape, position: position, random: &random)
    }

    /// ±0.04 in place, a radius of 0.15-0.21, ±0.05 in each colour channel, a background from 0.86 to 1.
    static func jittered(colour: ShapeScene.Colour, shape: ShapeScene.Shape, position: ShapeScene.Position,
                         random: inout SplitMix64) -> ShapeScene {
        let centre = position.point + SIMD2(random.uniform(-0.04, 0.04), random.uniform(-0.04, 0.04))
        let radius = random.uniform(0.15, 0.21)
        let shade = SIMD3(random.uniform(-0.05, 0.05), random.uniform(-0.05, 0.05), random.uniform(-0.05, 0.05))
        let fill = (colour.rgb + shade).clamped(lowerBound: SIMD3(repeating: 0), upperBound: SIMD3(repeating: 1))
        return ShapeScene(colour: colour, shape: shape, position: position, centre: centre, radius: radius,
                          fill: fill, background: random.uniform(0.86, 1))
    }

    /// Scenes `indices` as one `(n, 3, size, size)` batch, and their captions.
    public func batch(_ indices: Range<Int>) -> (pixels: Tensor, captions: [String]) {
        let scenes = indices.map(scene)
        return (Tensor.concatenate(scenes.map { $0.render(size: size) }, axis: 0), scenes.map(\.caption))
    }
}
