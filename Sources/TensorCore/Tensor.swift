import Foundation

/// An n-dimensional array of `Float`, stored contiguously in row-major order.
///
/// This is the one data type every layer of Stable Diffusion passes around. It is deliberately
/// plain: a shape and a flat array of numbers. Element `(i0, i1, ..., in)` lives at
/// `i0 * stride0 + i1 * stride1 + ...`, where the last dimension has stride 1.
///
/// Shape letters used in comments across the project:
/// - `N`: batch, `C`: channels, `H`/`W`: height and width of a feature map,
/// - `T`: sequence length (tokens or pixels), `D`: feature width, `S`: key/value length.
///
/// ```swift
/// var x = Tensor(shape: [1, 3, 2, 2], scalars: Array(0..<12).map(Float.init))
/// x = x.reshaped([3, 4])          // (3, 4), same numbers
/// print(x[2, 1])                  // 9.0
/// ```
public struct Tensor: Sendable, Equatable {
    /// The size of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.reduce(1, *)`.
    public var scalars: [Float]

    /// Wraps existing numbers. The count must match the shape.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        precondition(shape.reduce(1, *) == scalars.count,
                     "shape \(shape) needs \(shape.reduce(1, *)) numbers, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor filled with one value.
    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }

    /// Number of elements.
    public var count: Int { scalars.count }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// Row-major strides: how far apart consecutive indices of each dimension are in `scalars`.
    public var strides: [Int] { Tensor.strides(for: shape) }

    public static func strides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= shape[axis]
        }
        return strides
    }

    /// Reads or writes one element by its full index.
    public subscript(index: Int...) -> Float {
        get { scalars[flatIndex(index)] }
        set { scalars[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) does not fit shape \(shape)")
        var flat = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis], "index \(index) out of range for shape \(shape)")
            flat = flat * shape[axis] + i
        }
        return flat
    }

    /// Read-only access to the elements as a pointer, for kernels.
    @inlinable
    public func withUnsafePointer<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }

    /// Mutable access to the elements as a pointer, for kernels.
    @inlinable
    public mutating func withUnsafeMutablePointer<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }
}

extension Tensor: CustomStringConvertible {
    /// A short summary: shape, range and mean, plus the first few numbers.
    public var description: String {
        let head = scalars.prefix(6).map { String(format: "%.4f", $0) }.joined(separator: ", ")
        let more = count > 6 ? ", ..." : ""
        return "Tensor\(shape) [\(head)\(more)]"
    }
}

extension Tensor {
    /// Smallest and largest element (NaN-free input assumed).
    public var range: (min: Float, max: Float) {
        var lo = Float.infinity, hi = -Float.infinity
        for v in scalars { lo = Swift.min(lo, v); hi = Swift.max(hi, v) }
        return (lo, hi)
    }

    /// Arithmetic mean of all elements, accumulated in Double.
    public var mean: Float {
        guard count > 0 else { return 0 }
        var sum = 0.0
        for v in scalars { sum += Double(v) }
        return Float(sum / Double(count))
    }

    /// Standard deviation of all elements (population form, divides by `count`).
    public var standardDeviation: Float {
        guard count > 0 else { return 0 }
        let m = Double(mean)
        var sum = 0.0
        for v in scalars { let d = Double(v) - m; sum += d * d }
        return Float((sum / Double(count)).squareRoot())
    }

    /// Largest absolute difference to another tensor of the same shape; the usual test metric.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        var worst: Float = 0
        for i in 0..<count { worst = Swift.max(worst, abs(scalars[i] - other.scalars[i])) }
        return worst
    }
}
