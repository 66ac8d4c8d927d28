import StableDiffusion

/// How often each (colour, shape) pair appears among the first pictures of a training stream:
/// the proof that the left-out pairs really are left out.
///
/// ```swift
/// let census = DataCensus(ShapesDataset(seed: 0), count: 10_000)
/// census.count(.green, .triangle)        // 0
/// ```
public struct DataCensus: Sendable {
    public let total: Int
    private let counts: [String: Int]

    public init(_ data: ShapesDataset, count: Int) {
        var counts: [String: Int] = [:]
        for i in 0..<count {
            let scene = data.scene(i)
            counts[Self.key(scene.colour, scene.shape), default: 0] += 1
        }
        self.total = count
        self.counts = counts
    }

    public func count(_ colour: ShapeScene.Colour, _ shape: ShapeScene.Shape) -> Int {
        counts[Self.key(colour, shape)] ?? 0
    }

    private static func key(_ colour: ShapeScene.Colour, _ shape: ShapeScene.Shape) -> String {
        colour.rawValue + " " + shape.rawValue
    }
}
