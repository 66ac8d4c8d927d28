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

// MARK: - Backward

extension Fast {
    /// `Reference.conv2dBackward` on the GEMM, image by image and in bands of output rows. With
    /// the band's patches written out as the im2col matrix `cols` `(C·kH·kW, pixels)`:
    ///
    ///     dW   += dY_band · colsᵀ       (K, pixels) · (pixels, C·kH·kW), summed over bands and images
    ///     dcols = Wᵀ · dY_band          (C·kH·kW, K) · (K, pixels), then added back onto the
    ///                                   input pixels each patch row came from (col2im)
    ///     db    = Σ dY over images and pixels
    ///
    /// The band bounds the column matrix to `C·kH·kW x 8192` numbers.
    public static func conv2dBackward(_ dOut: Tensor, x: Tensor, weight: Tensor, stride: Int, padding: Int)
        -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        let g = Conv2DGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
        let batch = x.shape[0], outPlane = g.outHeight * g.outWidth, inPlane = g.inHeight * g.inWidth
        var dx = Tensor.zeros(x.shape), dWeight = Tensor.zeros(weight.shape)
        let bandRows = max(1, bandPixels / g.outWidth)
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: g.patchSize * min(outPlane, bandRows * g.outWidth))
        defer { columns.deallocate() }
        x.withUnsafePointer { x in
        dOut.withUnsafePointer { dy in
        weight.withUnsafePointer { w in
        dx.withUnsafeMutablePointer { dx in
        dWeight.withUnsafeMutablePointer { dw in
            for n in 0..<batch {
                let image = x + n * g.inChannels * inPlane, gradient = dy + n * g.outChannels * outPlane
                for firstRow in Swift.stride(from: 0, to: g.outHeight, by: bandRows) {
                    let rows = firstRow..<min(g.outHeight, firstRow + bandRows)
                    let pixels = rows.count * g.outWidth
                    let dyBand = MatrixOperand.rowMajor(gradient + rows.lowerBound * g.outWidth, rowLength: outPlane)
                    im2col(image, g, rows: rows, into: columns)
                    // dW (K, C·kH·kW) += dY_band (K, pixels) · colsᵀ (pixels, C·kH·kW)
                    gemm(m: g.outChannels, n: g.patchSize, k: pixels, a: dyBand,
                         b: .transposed(columns, rowLength: pixels), c: dw, ldc: g.patchSize, accumulate: true)
                    // dcols (C·kH·kW, pixels) = Wᵀ (C·kH·kW, K) · dY_band (K, pixels)
                    gemm(m: g.patchSize, n: pixels, k: g.outChannels, a: .transposed(w, rowLength: g.patchSize),
                         b: dyBand, c: columns, ldc: pixels)
                    col2imAdding(columns, g, rows: rows, into: dx + n * g.inChannels * inPlane)
                }
            }
        }}}}}
        // db[k] = Σ over images and pixels of dY[n, k, ...], in Double.
        let sums = dOut.withUnsafePointer { dy in
            (0..<g.outChannels).map { k in
                (0..<batch).reduce(0.0) { total, n in
                    let plane = dy + (n * g.outChannels + k) * outPlane
                    return (0..<outPlane).reduce(total) { $0 + Double(plane[$1]) }
                }
            }
        }
        let dBias = Tensor(shape: [g.outChannels], scalars: sums.map { Float($0) })
        return (dx, dWeight, dBias)
    }

    /// The im2col matrix of output rows `rows`: `cols[(c·kH + ky)·kW + kx, pixel] = x[c, oy·s + ky − p, ox·s + kx − p]`
    /// (zero in the padding), `pixel` counted from the band's first row. Patch rows are shared out to the cores.
    static func im2col(_ image: UnsafePointer<Float>, _ g: Conv2DGeometry, rows: Range<Int>, into columns: UnsafeMutablePointer<Float>) {
        let pixels = rows.count * g.outWidth
        let target = SendablePointer(columns), source = SendablePointer(UnsafeMutablePointer(mutating: image))
        Parallel.forEachChunk(of: g.patchSize, minimumChunk: 4) { patchRows in
            for q in patchRows {
                let (c, ky, kx) = (q / (g.kernelHeight * g.kernelWidth), q / g.kernelWidth % g.kernelHeight, q % g.kernelWidth)
                let plane = source.pointer + c * g.inHeight * g.inWidth, row = target.pointer + q * pixels
                for (i, oy) in rows.enumerated() {
                    let iy = oy * g.stride + ky - g.padding
                    for ox in 0..<g.outWidth {
                        let ix = ox * g.stride + kx - g.padding
                        let inside = iy >= 0 && iy < g.inHeight && ix >= 0 && ix < g.inWidth
                        row[i * g.outWidth + ox] = inside ? plane[iy * g.inWidth + ix] : 0
                    }
                }
            }
        }
    }

    /// The reverse of `im2col`: adds every entry of `cols` onto the input pixel it was read from.
    /// Channels are shared out to the cores: a channel's patch rows write only its own plane.
    static func col2imAdding(_ columns: UnsafeMutablePointer<Float>, _ g: Conv2DGeometry, rows: Range<Int>,
                             into dx: UnsafeMutablePointer<Float>) {
        let pixels = rows.count * g.outWidth, window = g.kernelHeight * g.kernelWidth
        let source = SendablePointer(columns), target = SendablePointer(dx)
        Parallel.forEachChunk(of: g.inChannels, minimumChunk: 1) { channels in
            for c in channels {
                let plane = target.pointer + c * g.inHeight * g.inWidth
                for q in (c * window)..<((c + 1) * window) {
                    let (ky, kx) = (q / g.kernelWidth % g.kernelHeight, q % g.kernelWidth)
                    let row = source.pointer + q * pixels
                    for (i, oy) in rows.enumerated() {
                        let iy = oy * g.stride + ky - g.padding
                        guard iy >= 0 && iy < g.inHeight else { continue }
                        for ox in 0..<g.outWidth {
                            let ix = ox * g.stride + kx - g.padding
                            if ix >= 0 && ix < g.inWidth { plane[iy * g.inWidth + ix] += row[i * g.outWidth + ox] }
                        }
                    }
                }
            }
        }
    }
}
