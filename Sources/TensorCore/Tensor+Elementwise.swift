import Foundation

// Elementwise arithmetic and the activation functions used by CLIP, the UNet and the VAE.

extension Tensor {
    /// Applies `f` to every element, on all cores.
    @inlinable
    public func map(_ f: @escaping (Float) -> Float) -> Tensor {
        Profiler.measure("elementwise") { mapped(f) }
    }

    @usableFromInline
    func mapped(_ f: @escaping (Float) -> Float) -> Tensor {
        var out = self
        let n = count
        out.withUnsafeMutablePointer { p in
            let dst = SendablePointer(p)
            Parallel.forEachChunk(of: n) { range in
                for i in range { dst.pointer[i] = f(dst.pointer[i]) }
            }
        }
        return out
    }

    /// Combines two tensors of the same shape element by element, on all cores.
    @inlinable
    public func zipMap(_ other: Tensor, _ f: @escaping (Float, Float) -> Float) -> Tensor {
        Profiler.measure("elementwise") { zipMapped(other, f) }
    }

    @usableFromInline
    func zipMapped(_ other: Tensor, _ f: @escaping (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        var out = self
        let n = count
        other.withUnsafePointer { q in
            let rhs = UnsafeMutablePointer(mutating: q)
            let source = SendablePointer(rhs)
            out.withUnsafeMutablePointer { p in
                let dst = SendablePointer(p)
                Parallel.forEachChunk(of: n) { range in
                    for i in range { dst.pointer[i] = f(dst.pointer[i], source.pointer[i]) }
                }
            }
        }
        return out
    }

    // Arithmetic eight lanes at a time (the closures above cost a call per element).
    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipVectors(rhs) { $0 + $1 } }
    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipVectors(rhs) { $0 - $1 } }
    public static func * (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipVectors(rhs) { $0 * $1 } }
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { lhs.mapVectors { $0 * rhs } }
    public static func * (lhs: Float, rhs: Tensor) -> Tensor { rhs.mapVectors { lhs * $0 } }
    public static func + (lhs: Tensor, rhs: Float) -> Tensor { lhs.mapVectors { $0 + rhs } }

    /// Adds in place: no new buffer when `lhs` is not shared (residual connections).
    public static func += (lhs: inout Tensor, rhs: Tensor) {
        precondition(lhs.shape == rhs.shape, "shapes differ: \(lhs.shape) vs \(rhs.shape)")
        let n = lhs.count
        Profiler.measure("elementwise") {
            rhs.withUnsafePointer { y in
                let source = SendablePointer(UnsafeMutablePointer(mutating: y))
                lhs.withUnsafeMutablePointer { x in
                    let target = SendablePointer(x)
                    Parallel.forEachChunk(of: n) { range in
                        for i in range { target.pointer[i] += source.pointer[i] }
                    }
                }
            }
        }
    }

    /// `a * self + b * other`: the shape of nearly every diffusion update
    /// (`x_t = sqrt(ᾱ) x_0 + sqrt(1 - ᾱ) ε`, guidance, sampler steps).
    public func scaled(_ a: Float, plus other: Tensor, times b: Float) -> Tensor {
        zipVectors(other) { a * $0 + b * $1 }
    }

    /// Combines two tensors of the same shape eight lanes at a time, on all cores; a last partial
    /// group of eight goes through `f` padded with zeros.
    func zipVectors(_ other: Tensor, _ f: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>) -> Tensor {
        precondition(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        return withUnsafePointer { x in
            other.withUnsafePointer { y in
                let left = SendablePointer(UnsafeMutablePointer(mutating: x))
                let right = SendablePointer(UnsafeMutablePointer(mutating: y))
                return Tensor.fillingGroupsOfEight(shape: shape) { start, lanes, out in
                    storeLanes(f(loadLanes(left.pointer + start, lanes), loadLanes(right.pointer + start, lanes)),
                               to: out + start, lanes)
                }
            }
        }
    }

    /// Adds a per-channel value to a `(N, C, ...)` tensor: `out[n, c, ...] = x[n, c, ...] + v[c]`.
    /// With `(N, C)` and `v` of `C` values this is a linear layer's bias.
    public func addingChannelwise(_ values: Tensor) -> Tensor {
        let channels = shape[1]
        precondition(values.count == channels, "\(values.count) values for \(channels) channels")
        let inner = count / (shape[0] * channels)
        var out = self
        let v = values.scalars
        out.withUnsafeMutablePointer { p in
            for n in 0..<shape[0] {
                for c in 0..<channels {
                    let base = p + (n * channels + c) * inner
                    for i in 0..<inner { base[i] += v[c] }
                }
            }
        }
        return out
    }
}
