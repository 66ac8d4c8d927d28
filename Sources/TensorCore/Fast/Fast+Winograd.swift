import Foundation

// 3x3 convolutions by Winograd's minimal filtering, F(4x4, 3x3): 4x fewer multiplications.
//
// A 3x3 convolution computes each output from 9 products per input channel. Winograd's algorithm
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015, after S. Winograd
// 1980) computes a whole 4x4 tile of outputs from a 6x6 tile of inputs with 36 products instead of
// 16 · 9 = 144, by moving both into a transformed space where the convolution is an elementwise
// product:
//
//     Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A          g: 3x3 kernel, d: 6x6 input tile, Y: 4x4 outputs
//
// Summed over the input channels, the elementwise products of all tiles become 36 ordinary matrix
// products, one per position ξ of the 6x6 transformed tile:
//
//     M[ξ] (C_out x tiles) = U[ξ] (C_out x C_in) · V[ξ] (C_in x tiles)
//     U[ξ] = (G g Gᵀ)[ξ] for every (output, input) channel pair, V[ξ] = (Bᵀ d B)[ξ] for every tile
//
// which the fast GEMM runs; the transforms are a few additions per number. The price is rounding:
// the transforms scale numbers by up to 8 and then cancel, so the result carries a few times the
// float error of the direct sum (the tests measure it against the plain loops: about 1e-6 of the
// size of the terms). The model's training keeps the direct convolution (`Winograd.isAllowed`), so
// that gradients and the trained weights do not depend on it.

/// The transforms of F(4x4, 3x3), with the interpolation points 0, ±1, ±2 and ∞.
public enum Winograd {
    /// Whether 3x3 convolutions on the fast kernels may use this algorithm. Training forwards turn
    /// it off for their task (`UNet2DConditionModel.trainingForward`, `AutoencoderKL.trainingForward`),
    /// and `SD_WINOGRAD=0` for the whole process.
    @TaskLocal public static var isAllowed: Bool = processDefault

    /// `SD_WINOGRAD=0` (or `off`) turns it off for the process; anything else leaves it on.
    static let processDefault: Bool = {
        let value = ProcessInfo.processInfo.environment["SD_WINOGRAD"]?.lowercased()
        return value != "0" && value != "off"
    }()

    /// Runs `body` with every convolution computed directly.
    public static func withoutIt<Result>(_ body: () throws -> Result) rethrows -> Result {
        try $isAllowed.withValue(false, operation: body)
    }

    /// Whether convolution `g` on a batch of `batch` images goes through Winograd: a 3x3 kernel,
    /// stride 1, padding 1, and enough pixels (1024 per batch, 64 tiles) for the kernel's transform
    /// (`C_out · C_in · 36` numbers, 4x the kernel) to pay for itself.
    package static func applies(to g: Conv2DGeometry, batch: Int) -> Bool {
        g.kernelHeight == 3 && g.kernelWidth == 3 && g.stride == 1 && g.padding == 1
            && batch * g.inHeight * g.inWidth >= 1024 && isAllowed
    }

    /// `d ↦ Bᵀ d` for one column of six numbers (and, on rows, `d B`):
    ///
    ///     Bᵀ = [ 4   0  −5   0   1   0 ]
    ///          [ 0  −4  −4   1   1   0 ]
    ///          [ 0   4  −4  −1   1   0 ]
    ///          [ 0  −2  −1   2   1   0 ]
    ///          [ 0   2  −1  −2   1   0 ]
    ///          [ 0   4   0  −5   0   1 ]
    @inline(__always)
    static func inputTransform(_ d0: SIMD4<Float>, _ d1: SIMD4<Float>, _ d2: SIMD4<Float>, _ d3: SIMD4<Float>,
                               _ d4: SIMD4<Float>, _ d5: SIMD4<Float>)
        -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
        let a = d4 - 4 * d2, b = d3 - 4 * d1, c = d4 - d2, e = 2 * (d3 - d1)
        return (4 * d0 - 5 * d2 + d4, a + b, a - b, c + e, c - e, 4 * d1 - 5 * d3 + d5)
    }

    /// `m ↦ Aᵀ m` for one column of six numbers:
    ///
    ///     Aᵀ = [ 1   1   1   1   1   0 ]
    ///          [ 0   1  −1   2  −2   0 ]
    ///          [ 0   1   1   4   4   0 ]
    ///          [ 0   1  −1   8  −8   1 ]
    @inline(__always)
    static func outputTransform(_ m0: SIMD4<Float>, _ m1: SIMD4<Float>, _ m2: SIMD4<Float>, _ m3: SIMD4<Float>,
                                _ m4: SIMD4<Float>, _ m5: SIMD4<Float>)
        -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
        let sum12 = m1 + m2, difference12 = m1 - m2, sum34 = m3 + m4, difference34 = m3 - m4
        return (m0 + sum12 + sum34, difference12 + 2 * difference34, sum12 + 4 * sum34, difference12 + 8 * difference34 + m5)
    }

    /// `g ↦ G g` for one column of three kernel numbers (and, on rows, `g Gᵀ`):
    ///
    ///     G = [  1/4     0     0  ]
    ///         [ −1/6   −1/6  −1/6 ]
    ///         [ −1/6    1/6  −1/6 ]
    ///         [ 1/24   1/12   1/6 ]
    ///         [ 1/24  −1/12   1/6 ]
    ///         [   0      0     1  ]
    @inline(__always)
    static func kernelTransform(_ g0: Float, _ g1: Float, _ g2: Float) -> (Float, Float, Float, Float, Float, Float) {
        (kernelTransform(0, g0, g1, g2), kernelTransform(1, g0, g1, g2), kernelTransform(2, g0, g1, g2),
         kernelTransform(3, g0, g1, g2), kernelTransform(4, g0, g1, g2), kernelTransform(5, g0, g1, g2))
    }

    /// Row `i` of `G g` alone (multiplying by the fractions' reciprocals: divisions would be most
    /// of a large layer's transform time).
    @inline(__always)
    static func kernelTransform(_ i: Int, _ g0: Float, _ g1: Float, _ g2: Float) -> Float {
        let sixth: Float = 1.0 / 6, twelfth: Float = 1.0 / 12, twentyFourth: Float = 1.0 / 24
        switch i {
        case 0: return g0 * 0.25
        case 1: return -(g0 + g2 + g1) * sixth
        case 2: return -(g0 + g2 - g1) * sixth
        case 3: return g0 * twentyFourth + g1 * twelfth + g2 * sixth
        case 4: return g0 * twentyFourth - g1 * twelfth + g2 * sixth
        default: return g2
        }
    }

    /// `U = G g Gᵀ` for every kernel, packed for the GEMM: one `(C_out, C_in)` matrix `U[ξ]` per
    /// position ξ = 6i + j of the 6x6 tile, each packed once and then read by every chunk of tiles.
    /// Six positions (one row i) at a time, through a buffer a sixth of U's size.
    static func transformedKernels(_ weight: UnsafePointer<Float>, outChannels: Int, inChannels: Int) -> [PackedMatrix] {
        let pairs = outChannels * inChannels
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 6 * pairs)
        defer { buffer.deallocate() }
        let target = SendablePointer(buffer)
        var packed: [PackedMatrix] = []
        for i in 0..<6 {
            Parallel.forEachChunk(of: pairs, minimumChunk: 1024) { range in
                for pair in range {
                    let g = weight + 9 * pair
                    // Row i of G g (from the kernel's three columns), then that row times Gᵀ.
                    let row = kernelTransform(kernelTransform(i, g[0], g[3], g[6]), kernelTransform(i, g[1], g[4], g[7]),
                                              kernelTransform(i, g[2], g[5], g[8]))
                    let out = target.pointer + pair
                    out[0] = row.0; out[pairs] = row.1; out[2 * pairs] = row.2
                    out[3 * pairs] = row.3; out[4 * pairs] = row.4; out[5 * pairs] = row.5
                }
            }
            for j in 0..<6 {
                packed.append(PackedMatrix(.matrix(.rowMajor(buffer + j * pairs, rowLength: inChannels)),
                                           outer: outChannels, depth: inChannels, width: CPUKernels.active.tileRows))
            }
        }
        return packed
    }

}

extension Fast {
    /// `Reference.conv2d` for a 3x3 kernel with stride 1 and padding 1, by Winograd's F(4x4, 3x3)
    /// (see the top of this file). The tiles of all images are processed in chunks small enough for
    /// V and M (36 numbers per tile and channel) to stay near 32 MB.
    package static func winogradConv2d(_ x: Tensor, _ g: Conv2DGeometry, weight: UnsafePointer<Float>, bias: Tensor?) -> Tensor {
        let batch = x.shape[0], cIn = g.inChannels, cOut = g.outChannels, h = g.inHeight, w = g.inWidth
        let tileRows = (h + 3) / 4, tileColumns = (w + 3) / 4, tilesPerImage = tileRows * tileColumns
        let totalTiles = batch * tilesPerImage
        // Chunks of whole rows of 4 tiles (the input transform handles four neighbours at once).
        let chunk = max(16, min(roundUp(totalTiles, to: 4), (8 << 20) / (36 * max(cIn, cOut))) / 4 * 4)
        let u = Profiler.measure("conv2d: Winograd kernel transform") {
            Winograd.transformedKernels(weight, outChannels: cOut, inChannels: cIn)
        }
        let v = UnsafeMutablePointer<Float>.allocate(capacity: 36 * cIn * chunk)
        let m = UnsafeMutablePointer<Float>.allocate(capacity: 36 * cOut * chunk)
        defer { v.deallocate(); m.deallocate() }
        var out = Tensor(shape: [batch, cOut, h, w], unsafeUninitialized: { _ in })

        x.withUnsafePointer { input in out.withUnsafeMutablePointer { output in
            let input = SendablePointer(UnsafeMutablePointer(mutating: input)), output = SendablePointer(output)
            let vs = SendablePointer(v), ms = SendablePointer(m)
            let biasValues = bias?.scalars
            for first in stride(from: 0, to: totalTiles, by: chunk) {
                let count = min(chunk, totalTiles - first)
                // V[ξ][c][t] = (Bᵀ d B)[ξ], four tiles at a time, channels shared out to the cores.
                Profiler.measure("conv2d: Winograd input transform") {
                    Parallel.forEachChunk(of: cIn, minimumChunk: 4) { channels in
                        withUnsafeTemporaryAllocation(of: SIMD4<Float>.self, capacity: 36) { d in
                            for c in channels {
                                for t in stride(from: 0, to: count, by: 4) {
                                    transformInputTiles(input.pointer, channel: c, channels: cIn, height: h, width: w,
                                                        firstTile: first + t, tiles: min(4, count - t), tileColumns: tileColumns,
                                                        tilesPerImage: tilesPerImage, scratch: d.baseAddress!,
                                                        into: vs.pointer + c * chunk + t, positionStride: cIn * chunk)
                                }
                            }
                        }
                    }
                }
                // M[ξ] = U[ξ] · V[ξ], 36 products of (C_out x C_in) by (C_in x tiles).
                for position in 0..<36 {
                    gemm(m: cOut, n: count, k: cIn, a: .packed(u[position]),
                         b: .matrix(.rowMajor(vs.pointer + position * cIn * chunk, rowLength: chunk)),
                         c: ms.pointer + position * cOut * chunk, ldc: chunk, accumulate: false)
                }
                // Y = Aᵀ M A + bias, cropped at the right and bottom edges.
                Profiler.measure("conv2d: Winograd output transform") {
                    Parallel.forEachChunk(of: cOut, minimumChunk: 4) { channels in
                        withUnsafeTemporaryAllocation(of: SIMD4<Float>.self, capacity: 24) { rows in
                            for o in channels {
                                let b = biasValues?[o] ?? 0
                                for t in stride(from: 0, to: count, by: 4) {
                                    transformOutputTiles(ms.pointer + o * chunk + t, positionStride: cOut * chunk, bias: b,
                                                         firstTile: first + t, tiles: min(4, count - t), channel: o,
                                                         channels: cOut, height: h, width: w, tileColumns: tileColumns,
                                                         tilesPerImage: tilesPerImage, scratch: rows.baseAddress!,
                                                         into: output.pointer)
                                }
                            }
                        }
                    }
                }
            }
        }}
        return out
    }

    /// The 6x6 input tiles of up to four consecutive tiles of one channel, transformed, written at
    /// `target[ξ · positionStride + q]` for tile q. A tile's window starts one pixel above and left
    /// of its 4x4 outputs (the padding); pixels outside the image are zeros. `d` holds 36 vectors.
    @inline(__always)
    private static func transformInputTiles(_ x: UnsafeMutablePointer<Float>, channel: Int, channels: Int, height: Int,
                                            width: Int, firstTile: Int, tiles: Int, tileColumns: Int, tilesPerImage: Int,
                                            scratch d: UnsafeMutablePointer<SIMD4<Float>>,
                                            into target: UnsafeMutablePointer<Float>, positionStride: Int) {
        // d[6k + j]: row k, column j of the window, lane q for tile q.
        d.update(repeating: SIMD4(), count: 36)
        for q in 0..<tiles {
            let tile = firstTile + q
            let image = tile / tilesPerImage, inImage = tile % tilesPerImage
            let y0 = (inImage / tileColumns) * 4 - 1, x0 = (inImage % tileColumns) * 4 - 1
            let plane = x + (image * channels + channel) * height * width
            for k in 0..<6 {
                let y = y0 + k
                guard y >= 0 && y < height else { continue }
                let row = plane + y * width
                if x0 >= 0 && x0 + 6 <= width {
                    for j in 0..<6 { d[6 * k + j][q] = row[x0 + j] }
                } else {
                    for j in 0..<6 where x0 + j >= 0 && x0 + j < width { d[6 * k + j][q] = row[x0 + j] }
                }
            }
        }
        // Bᵀ d: columns; then (Bᵀ d) B: rows.
        for j in 0..<6 {
            let t = Winograd.inputTransform(d[j], d[6 + j], d[12 + j], d[18 + j], d[24 + j], d[30 + j])
            d[j] = t.0; d[6 + j] = t.1; d[12 + j] = t.2; d[18 + j] = t.3; d[24 + j] = t.4; d[30 + j] = t.5
        }
        for i in 0..<6 {
            let t = Winograd.inputTransform(d[6 * i], d[6 * i + 1], d[6 * i + 2], d[6 * i + 3], d[6 * i + 4], d[6 * i + 5])
            d[6 * i] = t.0; d[6 * i + 1] = t.1; d[6 * i + 2] = t.2; d[6 * i + 3] = t.3; d[6 * i + 4] = t.4; d[6 * i + 5] = t.5
            for j in 0..<6 {
                let out = target + (6 * i + j) * positionStride
                if tiles == 4 {
                    UnsafeMutableRawPointer(out).storeBytes(of: d[6 * i + j], as: SIMD4<Float>.self)
                } else {
                    for q in 0..<tiles { out[q] = d[6 * i + j][q] }
                }
            }
        }
    }

    /// Up to four consecutive output tiles of one channel: `Y = Aᵀ M A + bias` from the 36 numbers
    /// `m[ξ · positionStride + q]` of tile q, written where each tile's 4x4 outputs fall inside the
    /// image. `rows` holds 24 vectors.
    @inline(__always)
    private static func transformOutputTiles(_ m: UnsafeMutablePointer<Float>, positionStride: Int, bias: Float,
                                             firstTile: Int, tiles: Int, channel: Int, channels: Int, height: Int,
                                             width: Int, tileColumns: Int, tilesPerImage: Int,
                                             scratch rows: UnsafeMutablePointer<SIMD4<Float>>,
                                             into y: UnsafeMutablePointer<Float>) {
        @inline(__always) func load(_ position: Int) -> SIMD4<Float> {
            let p = m + position * positionStride
            if tiles == 4 { return UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self) }
            var v = SIMD4<Float>()
            for q in 0..<tiles { v[q] = p[q] }
            return v
        }
        // Aᵀ M: six columns of six give four rows of six.
        for j in 0..<6 {
            let t = Winograd.outputTransform(load(j), load(6 + j), load(12 + j), load(18 + j), load(24 + j), load(30 + j))
            rows[j] = t.0; rows[6 + j] = t.1; rows[12 + j] = t.2; rows[18 + j] = t.3
        }
        // (Aᵀ M) A: each row of six gives four outputs; lane q is tile q's.
        for i in 0..<4 {
            let r = rows + 6 * i
            let t = Winograd.outputTransform(r[0], r[1], r[2], r[3], r[4], r[5])
            for q in 0..<tiles {
                let tile = firstTile + q
                let image = tile / tilesPerImage, inImage = tile % tilesPerImage
                let y0 = (inImage / tileColumns) * 4, x0 = (inImage % tileColumns) * 4
                guard y0 + i < height else { continue }
                let out = y + ((image * channels + channel) * height + y0 + i) * width + x0
                if x0 + 4 <= width {
                    out[0] = t.0[q] + bias; out[1] = t.1[q] + bias; out[2] = t.2[q] + bias; out[3] = t.3[q] + bias
                } else {
                    let values = SIMD4(t.0[q], t.1[q], t.2[q], t.3[q])
                    for j in 0..<4 where x0 + j < width { out[j] = values[j] + bias }
                }
            }
        }
    }
}
