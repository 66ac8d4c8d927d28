// 2-D convolution, fast: the twin of `Reference.conv2d` (Reference/Reference+Conv2d.swift).
//
// im2col + GEMM. For every output pixel, the `C_in · kH · kW` input values under the
// kernel window form one column of a matrix; the convolution is then a single matrix product
// `weight (C_out, C_in·kH·kW) · columns (C_in·kH·kW, H_out·W_out)`.
//
// The column matrix is never stored. It is 9x the size of the image (1.2 GB for the VAE's last
// layers at 512x512), and the GEMM copies B into its packed panels anyway, so `ImagePatches`
// writes those panels straight from the image: the "implicit im2col" of GPU libraries.

/// Output pixels per band of a convolution: 8192, which cut into four tiles per core makes tiles
/// of about 1000 pixels, whose output block (a few hundred channels by 1000) fits in L2.
let bandPixels = 8192

extension Fast {
    /// `Reference.conv2d` as a matrix product over image patches.
    ///
    /// - Parameters:
    ///   - weight: `(C_out, C_in, kH, kW)`.
    ///   - bias: `(C_out)`, or nil.
    /// - Returns: `(N, C_out, H_out, W_out)` for input `(N, C_in, H, W)`.
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int) -> Tensor {
        let g = Conv2DGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
        return weight.withUnsafePointer { w in
            conv2d(x, g, weight: .matrix(.rowMajor(w, rowLength: g.patchSize)), bias: bias)
        }
    }

    /// The same convolution with a 16-bit kernel `(C_out, C_in, kH, kW)`, widened as the GEMM packs it.
    public static func conv2d(_ x: Tensor, weight: HalfTensor, bias: Tensor?, stride: Int, padding: Int) -> Tensor {
        let g = Conv2DGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
        return weight.withBytes { w in
            conv2d(x, g, weight: .halves(.rowMajor(w, format: weight.format, rowLength: g.patchSize)), bias: bias)
        }
    }

    /// The convolution `g` with its kernel seen as the matrix `(C_out, C_in·kH·kW)`, GEMM's `A`.
    private static func conv2d(_ x: Tensor, _ g: Conv2DGeometry, weight: PanelSource, bias: Tensor?) -> Tensor {
        let batch = x.shape[0]
        let outPlane = g.outHeight * g.outWidth
        // Every element is written by the GEMMs below, which add the bias as they first store each
        // output (so no separate pass writes it, and the fresh pages are first touched on all cores).
        var out = Tensor(shape: [batch, g.outChannels, g.outHeight, g.outWidth], unsafeUninitialized: { _ in })
        let pointwise = g.kernelHeight == 1 && g.kernelWidth == 1 && g.stride == 1 && g.padding == 0

        if let bias { precondition(bias.count == g.outChannels, "conv2d: bias \(bias.shape) for \(g.outChannels) channels") }
        x.withUnsafePointer { x in
            out.withUnsafeMutablePointer { y in
                // Output channels are C's rows: one bias per row.
                GEMMBias.with(bias, perRow: true) { rowBias in
                    for n in 0..<batch {
                        let image = x + n * g.inChannels * g.inHeight * g.inWidth
                        let result = y + n * g.outChannels * outPlane
                        if pointwise {
                            // A 1x1 convolution is already a matrix product over the pixels.
                            gemm(m: g.outChannels, n: outPlane, k: g.inChannels, a: weight,
                                 b: .matrix(.rowMajor(image, rowLength: outPlane)), c: result, ldc: outPlane,
                                 accumulate: false, bias: rowBias)
                            continue
                        }
                        // Bands of output rows, so that each core's share of the output stays in
                        // its cache while the GEMM adds up the patch rows.
                        let bandRows = max(1, bandPixels / g.outWidth)
                        for firstRow in Swift.stride(from: 0, to: g.outHeight, by: bandRows) {
                            let rows = firstRow..<min(g.outHeight, firstRow + bandRows)
                            // With padding, the band's rows are first copied with the zeros written out
                            // (for stride 1: only there do patch rows become vector moves).
                            let band = g.padding > 0 && g.stride == 1 ? PaddedBand(image: image, geometry: g, rows: rows) : nil
                            let patches = band.map { ImagePatches(image: $0.pixels, geometry: $0.geometry, firstRow: 0) }
                                ?? ImagePatches(image: image, geometry: g, firstRow: rows.lowerBound)
                            withExtendedLifetime(band) {
                                gemm(m: g.outChannels, n: rows.count * g.outWidth, k: g.patchSize, a: weight,
                                     b: .patches(patches), c: result + rows.lowerBound * g.outWidth, ldc: outPlane,
                                     accumulate: false, bias: rowBias)
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// The input rows that one band of output rows reads, copied with the zero padding written out:
/// `(C_in, rows_in, W + 2·padding)`. Convolving this band with no padding gives the same outputs,
/// and every window then lies inside it, so `ImagePatches` copies 16 pixels at a time with two
/// vector moves instead of checking each pixel against the border. The copy costs one ninth of the
/// patches it saves work on (a 3x3 window reads every pixel nine times).
final class PaddedBand {
    private let storage: UnsafeMutablePointer<Float>
    var pixels: UnsafePointer<Float> { UnsafePointer(storage) }
    /// The band's own geometry: no padding, `rows_in = (rows − 1)·stride + kH` input rows.
    let geometry: Conv2DGeometry

    init(image: UnsafePointer<Float>, geometry g: Conv2DGeometry, rows: Range<Int>) {
        var geometry = g
        geometry.padding = 0
        geometry.inHeight = (rows.count - 1) * g.stride + g.kernelHeight
        geometry.inWidth = g.inWidth + 2 * g.padding
        self.geometry = geometry
        let band = geometry, plane = band.inHeight * band.inWidth
        storage = .allocate(capacity: g.inChannels * plane)
        let firstInputRow = rows.lowerBound * g.stride - g.padding
        let target = SendablePointer(storage)
        Parallel.forEachChunk(of: g.inChannels, minimumChunk: 4) { channels in
            for c in channels {
                let source = image + c * g.inHeight * g.inWidth
                for r in 0..<band.inHeight {
                    let row = target.pointer + c * plane + r * band.inWidth
                    let y = firstInputRow + r
                    guard y >= 0 && y < g.inHeight else {
                        row.update(repeating: 0, count: band.inWidth)
                        continue
                    }
                    row.update(repeating: 0, count: g.padding)
                    (row + g.padding).update(from: source + y * g.inWidth, count: g.inWidth)
                    (row + g.padding + g.inWidth).update(repeating: 0, count: g.padding)
                }
            }
        }
    }

    deinit { storage.deallocate() }
}

/// The im2col matrix of one image, `(C_in·kH·kW, H_out·W_out)`, without storing it:
/// `B[(c·kH + ky)·kW + kx, oy·W_out + ox] = x[c, oy·s + ky − p, ox·s + kx − p]`, zero where the
/// window hangs over the padding. The GEMM asks for blocks of it in its packed 16-column panels.
struct ImagePatches: @unchecked Sendable {
    let image: UnsafePointer<Float>
    let geometry: Conv2DGeometry
    /// The output row that column 0 stands for (convolutions run in bands of rows).
    let firstRow: Int
    /// Patch row p = (c·kH + ky)·kW + kx reads input pixels at `windowOffsets[p]` from the window's
    /// top-left corner: channel plane c, row ky, column kx. Worked out once for every patch row, so
    /// that packing even a single panel does no division.
    private let windowOffsets: [Int]

    init(image: UnsafePointer<Float>, geometry g: Conv2DGeometry, firstRow: Int) {
        self.image = image
        self.geometry = g
        self.firstRow = firstRow
        var offsets = [Int]()
        offsets.reserveCapacity(g.patchSize)
        for c in 0..<g.inChannels {
            for ky in 0..<g.kernelHeight {
                for kx in 0..<g.kernelWidth { offsets.append(c * g.inHeight * g.inWidth + ky * g.inWidth + kx) }
            }
        }
        windowOffsets = offsets
    }

    /// Writes columns `columns` (whole panels of 16, zero past the last pixel) for patch rows
    /// `depth`, laid out as `GEMM+Packing.swift` describes.
    ///
    /// Panel by panel, so that the writes run straight through memory: a panel is 16 neighbouring
    /// output pixels, and its packed rows are the 16 input pixels under each weight of the window.
    func pack(columns: Range<Int>, depth: Range<Int>, into packed: UnsafeMutablePointer<Float>) {
        let g = geometry
        let offsets = windowOffsets[depth]
        var (oy, ox) = (firstRow + columns.lowerBound / g.outWidth, columns.lowerBound % g.outWidth)
        for (panel, first) in stride(from: 0, to: columns.count, by: nr).enumerated() {
            let out = packed + panel * nr * depth.count
            let iy = oy * g.stride - g.padding, ix = ox * g.stride - g.padding
            // The usual case (always, inside a padded band whose width is a multiple of 16): 16
            // pixels of one output row whose windows all lie inside the image, so each patch row
            // is 16 neighbouring input pixels, two vector moves.
            if g.stride == 1 && first + nr <= columns.count && ox + nr <= g.outWidth
                && iy >= 0 && iy + g.kernelHeight <= g.inHeight && ix >= 0 && ix + nr - 1 + g.kernelWidth <= g.inWidth {
                let corner = UnsafeRawPointer(image + iy * g.inWidth + ix)
                offsets.withUnsafeBufferPointer { offsets in
                    for (step, offset) in offsets.enumerated() {
                        let source = corner + offset * MemoryLayout<Float>.stride
                        let target = UnsafeMutableRawPointer(out + step * nr)
                        target.storeBytes(of: source.loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
                        target.storeBytes(of: source.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self),
                                          toByteOffset: 32, as: SIMD8<Float>.self)
                    }
                }
            } else {
                packEdgePanel(startingAt: (oy, ox), count: min(nr, columns.count - first), depth: depth, into: out)
            }
            ox += nr
            while ox >= g.outWidth { ox -= g.outWidth; oy += 1 }
        }
    }

    /// A panel that wraps to the next output row, touches the padding, strides, or ends early:
    /// pixel by pixel, zero outside the image and past the last of its `count` pixels.
    private func packEdgePanel(startingAt start: (oy: Int, ox: Int), count: Int, depth: Range<Int>,
                               into packed: UnsafeMutablePointer<Float>) {
        let g = geometry
        let window = g.kernelHeight * g.kernelWidth
        var (c, ky, kx) = (depth.lowerBound / window, depth.lowerBound % window / g.kernelWidth, depth.lowerBound % g.kernelWidth)
        var out = packed
        for _ in depth {
            let plane = image + c * g.inHeight * g.inWidth
            var (y, x) = start
            for i in 0..<nr {
                let sy = y * g.stride + ky - g.padding, sx = x * g.stride + kx - g.padding
                out[i] = i < count && sy >= 0 && sy < g.inHeight && sx >= 0 && sx < g.inWidth ? plane[sy * g.inWidth + sx] : 0
                x += 1
                if x == g.outWidth { x = 0; y += 1 }
            }
            out += nr
            // Next patch row: kx, then ky, then the channel.
            kx += 1
            if kx == g.kernelWidth { kx = 0; ky += 1 }
            if ky == g.kernelHeight { ky = 0; c += 1 }
        }
    }
}
