import TensorCore

extension PictureSet {
    /// The picture closest to `x` by root-mean-square pixel difference, and that difference.
    ///
    /// A sample that is a training picture to within the last step's leftover noise is a copy.
    public func nearest(to x: Tensor) -> (index: Int, distance: Float) {
        let distances = pictures.map { Difference.rootMeanSquare(x, $0.pixels) }
        let index = distances.indices.min { distances[$0] < distances[$1] }!
        return (index, distances[index])
    }
}
