import Foundation

// The activation functions of CLIP, the UNet and the VAE, twice each:
//
//   silu(_ x: Float), gelu(_ x: Float), ...     the definition, one number at a time (libm);
//   Tensor.silu(), Tensor.gelu(), ...           the same eight numbers at a time on all cores,
//                                               built on the vector `exp` (Exponential.swift).
//
// Tests hold the vector versions to the scalar definitions.

/// SiLU (swish): `x · σ(x) = x / (1 + e^-x)`. The UNet and the VAE use it after every GroupNorm.
@inlinable public func silu(_ x: Float) -> Float { x / (1 + expf(-x)) }

/// GELU, exact form: `x · Φ(x) = x/2 · (1 + erf(x / √2))`. Used by the UNet's feed-forward (GEGLU).
@inlinable public func gelu(_ x: Float) -> Float { 0.5 * x * (1 + erff(x * 0.70710678118654752)) }

/// GELU, tanh approximation: `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`.
@inlinable public func geluTanh(_ x: Float) -> Float {
    0.5 * x * (1 + tanhf(0.7978845608028654 * (x + 0.044715 * x * x * x)))
}

/// Quick GELU: `x · σ(1.702 x)`. OpenAI's CLIP text encoder was trained with it.
@inlinable public func quickGELU(_ x: Float) -> Float { x / (1 + expf(-1.702 * x)) }

// MARK: - Eight at a time

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

extension Tensor {
    public func silu() -> Tensor { mapVectors({ sigmoidWeighted($0, slope: 1) }) }
    public func gelu() -> Tensor { mapVectors({ TensorCore.gelu($0) }) }
    public func geluTanh() -> Tensor { map(TensorCore.geluTanh) }
    public func quickGELU() -> Tensor { mapVectors({ sigmoidWeighted($0, slope: 1.702) }) }

    /// GEGLU's activation in one pass: for `(..., 2F)` features split as `[hidden, gate]`,
    /// `hidden · gelu(gate)`, `(..., F)`. Saves splitting the (large) projection into two copies.
    public func gegluActivation() -> Tensor {
        let width = shape[rank - 1]
        precondition(width % 2 == 0, "GEGLU needs an even feature count, got \(width)")
        let half = width / 2, rows = count / width, vectorEnd = half & ~7
        var outShape = shape
        outShape[rank - 1] = half
        return Profiler.measure("elementwise") {
            withUnsafePointer { x in
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
