import Foundation

import _CKernels

// The activation functions, fast: the twins of Reference+Activations.swift, on all cores. The
// formulas themselves (SiLU, quick GELU, exact GELU with its erf, and their derivatives) are
// `activation_vector` in Sources/_CKernels/kernel_template.h, compiled per instruction set around
// the vector `exp`; tests hold each to the scalar definition.

/// One of the activations the C kernels compute (`cpu_activation`).
enum Activation {
    case silu, quickGELU, gelu
    case siluDerivative, quickGELUDerivative, geluDerivative

    var kind: Int32 {
        switch self {
        case .silu: return Int32(cpu_silu.rawValue)
        case .quickGELU: return Int32(cpu_quick_gelu.rawValue)
        case .gelu: return Int32(cpu_gelu.rawValue)
        case .siluDerivative: return Int32(cpu_silu_derivative.rawValue)
        case .quickGELUDerivative: return Int32(cpu_quick_gelu_derivative.rawValue)
        case .geluDerivative: return Int32(cpu_gelu_derivative.rawValue)
        }
    }

    /// `y[i] = f(x[i])` for `count` numbers on this core (`y` may be `x`).
    @inline(__always)
    func apply(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        CPUKernels.active.activation(kind, x, y, count)
    }
}

extension Fast {
    public static func silu(_ x: Tensor) -> Tensor { x.mapActivation(.silu) }
    public static func relu(_ x: Tensor) -> Tensor { x.mapVectors({ $0.replacing(with: 0, where: .!($0 .> 0)) }) }
    public static func gelu(_ x: Tensor) -> Tensor { x.mapActivation(.gelu) }
    public static func quickGELU(_ x: Tensor) -> Tensor { x.mapActivation(.quickGELU) }

    /// `Reference.geglu` in one pass over rows of `[hidden, gate]`: no copy of either half.
    public static func geglu(_ x: Tensor) -> Tensor {
        let width = x.shape[x.rank - 1]
        let half = width / 2, rows = x.count / width
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
                            // result = hidden · gelu(gate)
                            Activation.gelu.apply(gate, into: result, count: half)
                            for i in 0..<half { result[i] = hidden[i] * result[i] }
                        }
                    }
                })
            }
        }
    }
}

extension Tensor {
    /// `f(x)` for every element, on all cores, in chunks the C kernel runs through.
    func mapActivation(_ f: Activation) -> Tensor {
        Profiler.measure("elementwise") {
            withUnsafePointer { x in
                let source = SendablePointer(UnsafeMutablePointer(mutating: x))
                return Tensor(shape: shape, unsafeUninitialized: { out in
                    let target = SendablePointer(out.baseAddress!)
                    Parallel.forEachChunk(of: count, minimumChunk: 4096) { range in
                        f.apply(source.pointer + range.lowerBound, into: target.pointer + range.lowerBound, count: range.count)
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

// MARK: - Backward

extension Fast {
    public static func siluBackward(_ dy: Tensor, x: Tensor) -> Tensor { mapBackward(dy, x: x, derivative: .siluDerivative) }
    public static func geluBackward(_ dy: Tensor, x: Tensor) -> Tensor { mapBackward(dy, x: x, derivative: .geluDerivative) }
    public static func quickGELUBackward(_ dy: Tensor, x: Tensor) -> Tensor {
        mapBackward(dy, x: x, derivative: .quickGELUDerivative)
    }

    /// `Reference.mapBackward`: `dx[i] = dy[i] · f'(x[i])`, in chunks on all cores.
    static func mapBackward(_ dy: Tensor, x: Tensor, derivative: Activation) -> Tensor {
        Profiler.measure("activation backward") {
            x.withUnsafePointer { xs in dy.withUnsafePointer { gs in
                let xs = SendablePointer(UnsafeMutablePointer(mutating: xs)), gs = SendablePointer(UnsafeMutablePointer(mutating: gs))
                return Tensor(shape: x.shape, unsafeUninitialized: { out in
                    let target = SendablePointer(out.baseAddress!)
                    Parallel.forEachChunk(of: x.count, minimumChunk: 4096) { range in
                        let slope = target.pointer + range.lowerBound, dy = gs.pointer + range.lowerBound
                        derivative.apply(xs.pointer + range.lowerBound, into: slope, count: range.count)
                        for i in 0..<range.count { slope[i] = dy[i] * slope[i] }
                    }
                })
            }}
        }
    }

    /// `Reference.gegluBackward`: `dh = dy · gelu(g)`, `dg = dy · h · gelu'(g)`, rows shared out to
    /// the cores.
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
                        Activation.gelu.apply(gate, into: dHidden, count: half)
                        Activation.geluDerivative.apply(gate, into: dGate, count: half)
                        for i in 0..<half {
                            dHidden[i] = d[i] * dHidden[i]
                            dGate[i] = d[i] * hidden[i] * dGate[i]
                        }
                    }
                }
            }}}
            return dx
        }
    }
}
