import Foundation

// The activation functions, fast: the twins of Reference+Activations.swift, eight numbers at a
// time on all cores, built on the vector `exp` (VectorExp.swift). Tests hold each to the scalar
// definition.

/// `x · σ(a·x) = x / (1 + e^(−a·x))`: SiLU for `a = 1`, quick GELU for `a = 1.702`.
@inline(__always)
func sigmoidWeighted(_ x: SIMD8<Float>, slope: Float) -> SIMD8<Float> {
    x / (1 + exp(-slope * x))
}

/// erf for eight lanes: Abramowitz & Stegun 7.1.26,
/// `erf(|x|) ≈ 1 − (a₁t + a₂t² + a₃t³ + a₄t⁴ + a₅t⁵)·e^(−x²)` with `t = 1 / (1 + p·|x|)`,
/// absolute error below 1.5e-7 (about one float ulp of the result near 1), sign restored after.
@inline(__always)
func erf(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let magnitude = x.replacing(with: -x, where: x .< 0)
    let t = 1 / (1 + 0.3275911 * magnitude)
    var poly = SIMD8<Float>(repeating: 1.061405429)
    poly = poly * t - 1.453152027
    poly = poly * t + 1.421413741
    poly = poly * t - 0.284496736
    poly = poly * t + 0.254829592
    let positive = 1 - poly * t * exp(-magnitude * magnitude)
    return positive.replacing(with: -positive, where: x .< 0)
}

/// Exact GELU, `x/2 · (1 + erf(x/√2))`, for eight lanes.
@inline(__always)
func gelu(_ x: SIMD8<Float>) -> SIMD8<Float> {
    0.5 * x * (1 + erf(x * 0.70710678118654752))
}

extension Fast {
    public static func silu(_ x: Tensor) -> Tensor { x.mapVectors({ sigmoidWeighted($0, slope: 1) }) }
    public static func relu(_ x: Tensor) -> Tensor { x.mapVectors({ $0.replacing(with: 0, where: .!($0 .> 0)) }) }
    public static func gelu(_ x: Tensor) -> Tensor { x.mapVectors({ TensorCore.gelu($0) }) }
    public static func quickGELU(_ x: Tensor) -> Tensor { x.mapVectors({ sigmoidWeighted($0, slope: 1.702) }) }

    /// `Reference.geglu` in one pass over rows of `[hidden, gate]`: no copy of either half.
    public static func geglu(_ x: Tensor) -> Tensor {
        let width = x.shape[x.rank - 1]
        let half = width / 2, rows = x.count / width, vectorEnd = half & ~7
        var outShape = x.shape
        outShape[x.rank - 1] = half
        return Profiler.measure("elementwise") {
            x.withUnsafePointer { x in
                let source = SendablePointer(UnsafeMutablePointer(mutating: x))
                return Tensor(shape: outShape, unsafeUninitialized: { out in
                    let target = SendablePointer(out.baseAddress!)
                    Parallel.forEachChunk(of: rows, minimumChunk: 16) { range in
                        for row in range {
                            let hidden = source.pointer + row * width, gate = hidden + half
                            let result = target.pointer + row * half
                            for i in stride(from: 0, to: vectorEnd, by: 8) {
                                let h = UnsafeRawPointer(hidden + i).loadUnaligned(as: SIMD8<Float>.self)
                                let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD8<Float>.self)
                                UnsafeMutableRawPointer(result + i).storeBytes(of: h * TensorCore.gelu(g), as: SIMD8<Float>.self)
                            }
                            for i in vectorEnd..<half { result[i] = hidden[i] * TensorCore.gelu(gate[i]) }
                        }
                    }
                })
            }
        }
    }

}

extension Tensor {
    /// Applies a function of eight lanes to every element, on all cores. The last partial group
    /// of eight goes through the same function, padded with zeros.
    func mapVectors(_ f: (SIMD8<Float>) -> SIMD8<Float>) -> Tensor {
        withUnsafePointer { x in
            let source = SendablePointer(UnsafeMutablePointer(mutating: x))
            return Tensor.fillingGroupsOfEight(shape: shape) { start, lanes, out in
                storeLanes(f(loadLanes(source.pointer + start, lanes)), to: out + start, lanes)
            }
        }
    }

    /// A new tensor of `shape` whose elements `body(start, lanes, out)` writes, eight at a time
    /// (`lanes` < 8 only for the last group), in parallel; timed as elementwise work.
    static func fillingGroupsOfEight(shape: [Int], _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        Profiler.measure("elementwise") {
            let n = shape.reduce(1, *)
            return Tensor(shape: shape, unsafeUninitialized: { out in
                let target = SendablePointer(out.baseAddress!)
                Parallel.forEachChunk(of: (n + 7) / 8) { groups in
                    for group in groups { body(group * 8, min(8, n - group * 8), target.pointer) }
                }
            })
        }
    }
}

/// Up to eight floats as a vector; lanes past `lanes` are zero.
@inline(__always)
func loadLanes(_ p: UnsafePointer<Float>, _ lanes: Int) -> SIMD8<Float> {
    if lanes == 8 { return UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
    var v = SIMD8<Float>()
    for lane in 0..<lanes { v[lane] = p[lane] }
    return v
}

/// Stores the first `lanes` lanes of a vector.
@inline(__always)
func storeLanes(_ v: SIMD8<Float>, to p: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self); return }
    for lane in 0..<lanes { p[lane] = v[lane] }
}

// MARK: - Backward

/// `σ(a·x) · (1 + a·x · (1 − σ(a·x)))`, the derivative of `sigmoidWeighted`, for eight lanes:
/// `siluDerivative` for `a = 1`, `quickGELUDerivative` for `a = 1.702`.
@inline(__always)
func sigmoidWeightedDerivative(_ x: SIMD8<Float>, slope: Float) -> SIMD8<Float> {
    let ax = slope * x, sigma = 1 / (1 + exp(-ax))
    return sigma * (1 + ax * (1 - sigma))
}

/// `Φ(x) + x · φ(x)`, the derivative of exact GELU (`geluDerivative`), for eight lanes.
@inline(__always)
func geluDerivative(_ x: SIMD8<Float>) -> SIMD8<Float> {
    0.5 * (1 + erf(x * 0.70710678118654752)) + x * exp(-0.5 * x * x) * 0.3989422804014327
}

extension Fast {
    public static func siluBackward(_ dy: Tensor, x: Tensor) -> Tensor {
        mapBackward(dy, x: x) { sigmoidWeightedDerivative($0, slope: 1) }
    }
    public static func geluBackward(_ dy: Tensor, x: Tensor) -> Tensor { mapBackward(dy, x: x) { geluDerivative($0) } }
    public static func quickGELUBackward(_ dy: Tensor, x: Tensor) -> Tensor {
        mapBackward(dy, x: x) { sigmoidWeightedDerivative($0, slope: 1.702) }
    }

    /// `Reference.mapBackward`: `dx[i] = dy[i] · f'(x[i])`, eight elements at a time on all cores.
    @inline(__always)
    static func mapBackward(_ dy: Tensor, x: Tensor, derivative: (SIMD8<Float>) -> SIMD8<Float>) -> Tensor {
        Profiler.measure("activation backward") {
            x.withUnsafePointer { xs in dy.withUnsafePointer { gs in
                let xs = SendablePointer(UnsafeMutablePointer(mutating: xs)), gs = SendablePointer(UnsafeMutablePointer(mutating: gs))
                return Tensor.fillingGroupsOfEight(shape: x.shape) { start, lanes, out in
                    let slope = derivative(loadLanes(xs.pointer + start, lanes))
                    storeLanes(loadLanes(gs.pointer + start, lanes) * slope, to: out + start, lanes)
                }
            }}
        }
    }

    /// `Reference.gegluBackward`: `dh = dy · gelu(g)`, `dg = dy · h · gelu'(g)`, eight features at a
    /// time, rows shared out to the cores.
    public static func gegluBackward(_ dy: Tensor, x: Tensor) -> Tensor {
        Profiler.measure("activation backward") {
            let width = x.shape[x.rank - 1], half = width / 2, tokens = x.count / width
            var dx = Tensor(shape: x.shape, unsafeUninitialized: { _ in })
            x.withUnsafePointer { xs in dy.withUnsafePointer { gs in dx.withUnsafeMutablePointer { out in
                let xs = SendablePointer(UnsafeMutablePointer(mutating: xs)), gs = SendablePointer(UnsafeMutablePointer(mutating: gs))
                let out = SendablePointer(out)
                Parallel.forEachChunk(of: tokens, minimumChunk: max(1, 16_384 / max(1, width))) { range in
                    for t in range {
                        let hidden = xs.pointer + t * width, gate = hidden + half, d = gs.pointer + t * half
                        let dHidden = out.pointer + t * width, dGate = dHidden + half
                        for i in stride(from: 0, to: half, by: 8) {
                            let lanes = min(8, half - i)
                            let h = loadLanes(hidden + i, lanes), g = loadLanes(gate + i, lanes), dy = loadLanes(d + i, lanes)
                            storeLanes(dy * TensorCore.gelu(g), to: dHidden + i, lanes)
                            storeLanes(dy * h * geluDerivative(g), to: dGate + i, lanes)
                        }
                    }
                }
            }}}
            return dx
        }
    }
}
