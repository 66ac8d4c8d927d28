// Elementwise arithmetic, fast: the twins of Reference+Elementwise.swift and `Reference.map`,
// eight lanes at a time (or one closure call per element) on all cores.

extension Fast {
    /// `Reference.map` on all cores.
    public static func map(_ x: Tensor, _ f: @escaping (Float) -> Float) -> Tensor {
        Profiler.measure("elementwise") {
            var out = x
            let n = x.count
            out.withUnsafeMutablePointer { p in
                let dst = SendablePointer(p)
                Parallel.forEachChunk(of: n) { range in
                    for i in range { dst.pointer[i] = f(dst.pointer[i]) }
                }
            }
            return out
        }
    }

    /// `Reference.zip` on all cores.
    public static func zip(_ a: Tensor, _ b: Tensor, _ f: @escaping (Float, Float) -> Float) -> Tensor {
        Profiler.measure("elementwise") {
            var out = a
            let n = a.count
            b.withUnsafePointer { q in
                let source = SendablePointer(UnsafeMutablePointer(mutating: q))
                out.withUnsafeMutablePointer { p in
                    let dst = SendablePointer(p)
                    Parallel.forEachChunk(of: n) { range in
                        for i in range { dst.pointer[i] = f(dst.pointer[i], source.pointer[i]) }
                    }
                }
            }
            return out
        }
    }

    /// `Reference.weightedSum`, `α·a + β·b`, eight lanes at a time.
    public static func weightedSum(_ a: Tensor, _ alpha: Float, _ b: Tensor, _ beta: Float) -> Tensor {
        a.zipVectors(b) { alpha * $0 + beta * $1 }
    }

    /// `a += b` in place: no new buffer when `a` is not shared (residual connections).
    public static func add(_ b: Tensor, into a: inout Tensor) {
        let n = a.count
        Profiler.measure("elementwise") {
            b.withUnsafePointer { y in
                let source = SendablePointer(UnsafeMutablePointer(mutating: y))
                a.withUnsafeMutablePointer { x in
                    let target = SendablePointer(x)
                    Parallel.forEachChunk(of: n) { range in
                        for i in range { target.pointer[i] += source.pointer[i] }
                    }
                }
            }
        }
    }

    /// `Reference.addChannelwise`: one value per channel, or per (sample, channel), added to
    /// every pixel of its channel plane.
    public static func addChannelwise(_ x: Tensor, _ values: Tensor) -> Tensor {
        let batch = x.shape[0], channels = x.shape[1]
        let plane = x.count / (batch * channels)
        let perSample = values.count == batch * channels && values.rank == 2
        var out = x
        Profiler.measure("elementwise") {
            values.withUnsafePointer { v in
                let source = SendablePointer(UnsafeMutablePointer(mutating: v))
                out.withUnsafeMutablePointer { p in
                    let target = SendablePointer(p)
                    Parallel.forEachChunk(of: batch * channels, minimumChunk: max(1, 16_384 / max(1, plane))) { planes in
                        for i in planes {
                            let value = source.pointer[perSample ? i : i % channels]
                            let base = target.pointer + i * plane
                            for j in 0..<plane { base[j] += value }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `Reference.addChannelwiseBackward`: the gradient of each added value is the sum of its
    /// channel plane's gradients (over the samples too, for one value per channel). Channels are
    /// shared out to the cores; each sum runs as `planeSum`.
    public static func addChannelwiseBackward(_ dOut: Tensor, valuesShape: [Int]) -> Tensor {
        let batch = dOut.shape[0], channels = dOut.shape[1]
        let plane = dOut.count / (batch * channels), perSample = valuesShape.count == 2
        return Profiler.measure("elementwise") {
            computing(valuesShape, from: dOut, pieces: channels, minimumChunk: max(1, 16_384 / max(1, batch * plane))) { dy, dv, range in
                for c in range {
                    var total = 0.0
                    for n in 0..<batch {
                        let sum = planeSum(dy + (n * channels + c) * plane, count: plane)
                        if perSample { dv[n * channels + c] = Float(sum) } else { total += sum }
                    }
                    if !perSample { dv[c] = Float(total) }
                }
            }
        }
    }

    /// A new tensor of `shape` that `body(input, output, pieces)` writes from `input`, for pieces
    /// of `0..<count` shared out to the cores (at least `minimumChunk` a core). Every number of the
    /// output must be written.
    static func computing(_ shape: [Int], from input: Tensor, pieces count: Int, minimumChunk: Int,
                          _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Range<Int>) -> Void) -> Tensor {
        Tensor(shape: shape, unsafeUninitialized: { output in
            input.withUnsafePointer { x in
                let source = SendablePointer(UnsafeMutablePointer(mutating: x)), target = SendablePointer(output.baseAddress!)
                Parallel.forEachChunk(of: count, minimumChunk: minimumChunk) { range in
                    body(source.pointer, target.pointer, range)
                }
            }
        })
    }
}

extension Tensor {
    /// Combines two tensors of the same shape eight lanes at a time, on all cores; a last partial
    /// group of eight goes through `f` padded with zeros.
    func zipVectors(_ other: Tensor, _ f: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>) -> Tensor {
        withUnsafePointer { x in
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
}
