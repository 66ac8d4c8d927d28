// 2-D convolution, fast: the twin of `Reference.conv2d` (Reference/Reference+Conv2d.swift).
//
// im2col + GEMM. For every output pixel, the `C_in · kH · kW` input values under the
// kernel window form one column of a matrix; the convolution is then a single matrix product
// `weight (C_out, C_in·kH·kW) · columns (C_in·kH·kW, H_out·W_out)`.
//
// The column matrix is never stored. It is 9x the size of the image (1.2 GB for the VAE's last
// layers at 512x512), and the GEMM copies B into its packed panels anyway, so `ImagePatches`
// writes those panels straight from the image: the "implicit im2col" of GPU libraries.
//
// 3x3 convolutions with stride 1 and padding 1 on large enough images take another road in
// inference, Winograd's algorithm (Fast+Winograd.swift), unless `Winograd.isAllowed` is off.

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
        if Winograd.applies(to: g, batch: x.shape[0]) {
            return Profiler.measure("conv2d") { weight.withUnsafePointer { winogradConv2d(x, g, weight: $0, bias: bias) } }
        }
        return weight.withUnsafePointer { w in
            conv2d(x, g, weight: .matrix(.rowMajor(w, rowLength: g.patchSize)), bias: bias)
        }
    }

    /// The same convolution with a 16-bit kernel `(C_out, C_in, kH, kW)`, widened as the GEMM packs it.
    public static func conv2d(_ x: Tensor, weight: HalfTensor, bias: Tensor?, stride: Int, padding: Int) -> Tensor {
        let g = Conv2DGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
        if Winograd.applies(to: g, batch: x.shape[0]) {
            return conv2d(x, weight: weight.widened(), bias: bias, stride: stride, padding: padding)
        }
        return weight.withBytes { w in
            conv2d(x, g, weight: .halves(.rowMajor(w, format: weight.format, rowLength: g.patchSize)), bias: bias)
        }
    }

    /// The convolution `g` with its kernel seen as the matrix `(C_out, C_in·kH·kW)`, GEMM's `A`.
    private static func conv2d(_ x: Tensor, _ g: Conv2DGeometry, weight: PanelSource, bias: Tensor?) -> Tensor {
        Profiler.measure("conv2d") {
            imagesPerBand(g) > 1 && x.shape[0] > 1
                ? smallImagesConv2d(x, g, weight: weight, bias: bias) : convolution(x, g, weight: weight, bias: bias)
        }
    }

    /// Convolution image by image, in bands of output rows.
    private static func convolution(_ x: Tensor, _ g: Conv2DGeometry, weight: PanelSource, bias: Tensor?) -> Tensor {
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

// MARK: - Small images

extension Fast {
    /// Whole images per band: one for pictures of `bandPixels` or more, several for small ones
    /// (an 8x8 latent has 64 pixels: a product of 64 columns would leave the GEMM mostly packing).
    static func imagesPerBand(_ g: Conv2DGeometry) -> Int {
        max(1, bandPixels / max(1, g.outHeight * g.outWidth))
    }

    /// The convolution for a batch of small images: the patches of several images side by side in
    /// one im2col matrix, one GEMM for all of them into a `(C_out, images·pixels)` block, and that
    /// block copied to each image's place with the bias added.
    ///
    /// With stride 1 and output rows that divide a panel (8, 4, 2 or 1 pixels), the patches are not
    /// written out: the GEMM packs them from the padded images (`ImagePatches(paddedImages:)`).
    private static func smallImagesConv2d(_ x: Tensor, _ g: Conv2DGeometry, weight: PanelSource, bias: Tensor?) -> Tensor {
        let batch = x.shape[0], outPlane = g.outHeight * g.outWidth
        let group = min(batch, imagesPerBand(g))
        let implicit = ImagePatches.takesWholeRows(paddedGeometry(g))
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: implicit ? 0 : g.patchSize * group * outPlane)
        let block = UnsafeMutablePointer<Float>.allocate(capacity: g.outChannels * group * outPlane)
        defer { columns.deallocate(); block.deallocate() }
        // Every element is written: each image's channels are copied from the block.
        var out = Tensor(shape: [batch, g.outChannels, g.outHeight, g.outWidth], unsafeUninitialized: { _ in })
        x.withUnsafePointer { x in out.withUnsafeMutablePointer { y in
            for first in stride(from: 0, to: batch, by: group) {
                let images = first..<min(batch, first + group), width = images.count * outPlane
                if implicit {
                    let (pixels, geometry) = paddedImages(x, g, images: images)
                    defer { pixels.deallocate() }
                    let patches = ImagePatches(paddedImages: pixels, geometry: geometry, images: images.count)
                    gemm(m: g.outChannels, n: width, k: g.patchSize, a: weight, b: .patches(patches), c: block, ldc: width,
                         accumulate: false)
                } else {
                    im2col(x, g, images: images, rows: 0..<g.outHeight, into: columns, rowLength: width)
                    gemm(m: g.outChannels, n: width, k: g.patchSize, a: weight, b: .matrix(.rowMajor(columns, rowLength: width)),
                         c: block, ldc: width, accumulate: false)
                }
                scatterImages(block, images: images, channels: g.outChannels, plane: outPlane, bias: bias, into: y)
            }
        }}
        return out
    }

    /// Copies a `(C, images·plane)` block to the images' places in an `(N, C, plane)` tensor, plus a
    /// bias per channel. Channels are shared out to the cores.
    static func scatterImages(_ block: UnsafePointer<Float>, images: Range<Int>, channels: Int, plane: Int, bias: Tensor?,
                              into y: UnsafeMutablePointer<Float>) {
        let source = SendablePointer(UnsafeMutablePointer(mutating: block)), target = SendablePointer(y)
        let bias = bias?.scalars
        Parallel.forEachChunk(of: channels, minimumChunk: max(1, 16_384 / max(1, images.count * plane))) { range in
            for c in range {
                let b = bias?[c] ?? 0
                for (i, n) in images.enumerated() {
                    let from = source.pointer + c * images.count * plane + i * plane, to = target.pointer + (n * channels + c) * plane
                    for p in 0..<plane { to[p] = from[p] + b }
                }
            }
        }
    }

    /// The reverse of `scatterImages` (without a bias): the images' channels gathered side by side
    /// into a `(C, images·plane)` block.
    static func gatherImages(_ x: UnsafePointer<Float>, images: Range<Int>, channels: Int, plane: Int,
                             into block: UnsafeMutablePointer<Float>) {
        let source = SendablePointer(UnsafeMutablePointer(mutating: x)), target = SendablePointer(block)
        Parallel.forEachChunk(of: channels, minimumChunk: max(1, 16_384 / max(1, images.count * plane))) { range in
            for c in range {
                for (i, n) in images.enumerated() {
                    (target.pointer + c * images.count * plane + i * plane)
                        .update(from: source.pointer + (n * channels + c) * plane, count: plane)
                }
            }
        }
    }
}

// MARK: - Backward

extension Fast {
    /// `Reference.conv2dBackward` on the GEMM, in bands: a band of output rows of one image, or
    /// several whole small images side by side. With the band's patches written out as the im2col
    /// matrix `cols` `(C·kH·kW, pixels)`:
    ///
    ///     dWᵀ  += cols · dY_bandᵀ       (C·kH·kW, pixels) · (pixels, K), summed over the bands
    ///     dcols = Wᵀ · dY_band          (C·kH·kW, K) · (K, pixels), then added back onto the
    ///                                   input pixels each patch row came from (col2im)
    ///     db    = Σ dY over images and pixels
    ///
    /// The band bounds the column matrix to `C·kH·kW x 8192` numbers (or a few images more).
    ///
    /// With stride 1, dx is instead a convolution of its own: every input pixel collects dY from
    /// the output pixels whose patches covered it, through the kernel turned by 180° and with its
    /// two channel axes swapped,
    ///
    ///     dx = conv2d(dY, W′, padding: k − 1 − p),   W′[c, k, ky, kx] = W[k, c, kH−1−ky, kW−1−kx]
    ///
    /// one product of depth K·kH·kW instead of one of depth K followed by col2im's scattered adds,
    /// which is much faster where K is small (the VAE's outer levels).
    public static func conv2dBackward(_ dOut: Tensor, x: Tensor, weight: Tensor, stride: Int, padding: Int)
        -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        Profiler.measure("conv2d backward") { convolutionBackward(dOut, x: x, weight: weight, stride: stride, padding: padding) }
    }

    private static func convolutionBackward(_ dOut: Tensor, x: Tensor, weight: Tensor, stride: Int, padding: Int)
        -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        let g = Conv2DGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
        let batch = x.shape[0], outPlane = g.outHeight * g.outWidth
        let dxAsConvolution = stride == 1 && g.kernelHeight == g.kernelWidth && padding < g.kernelHeight
        var dx = Tensor.zeros(dxAsConvolution ? [0] : x.shape), dWeight = Tensor.zeros(weight.shape)
        // A band: `group` whole images, or (group 1) `bandRows` rows of one image. Its im2col matrix
        // is kept to about 4 MB, so that the GEMM reads it back from the cache, not from memory.
        let group = min(batch, imagesPerBand(g), max(1, (1 << 20) / max(1, g.patchSize * outPlane)))
        let bandRows = group > 1 ? g.outHeight : max(1, bandPixels / g.outWidth)
        let bandWidth = group * min(outPlane, bandRows * g.outWidth)
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: g.patchSize * bandWidth)
        let gathered = UnsafeMutablePointer<Float>.allocate(capacity: group > 1 ? g.outChannels * bandWidth : 0)
        let dwT = UnsafeMutablePointer<Float>.allocate(capacity: g.patchSize * g.outChannels)
        dwT.initialize(repeating: 0, count: g.patchSize * g.outChannels)
        defer { columns.deallocate(); gathered.deallocate(); dwT.deallocate() }
        x.withUnsafePointer { x in
        dOut.withUnsafePointer { dy in
        weight.withUnsafePointer { w in
        dx.withUnsafeMutablePointer { dx in
            for first in Swift.stride(from: 0, to: batch, by: group) {
                let images = first..<min(batch, first + group)
                for firstRow in Swift.stride(from: 0, to: g.outHeight, by: bandRows) {
                    let rows = firstRow..<min(g.outHeight, firstRow + bandRows)
                    let imagePixels = rows.count * g.outWidth, pixels = images.count * imagePixels
                    // dY_band (K, pixels): a strided view of one image's rows, or the images gathered.
                    let dyBand: MatrixOperand
                    if images.count == 1 {
                        dyBand = .rowMajor(dy + first * g.outChannels * outPlane + rows.lowerBound * g.outWidth, rowLength: outPlane)
                    } else {
                        gatherImages(dy, images: images, channels: g.outChannels, plane: outPlane, into: gathered)
                        dyBand = .rowMajor(gathered, rowLength: pixels)
                    }
                    im2col(x, g, images: images, rows: rows, into: columns, rowLength: pixels)
                    // dWᵀ (C·kH·kW, K) += cols (C·kH·kW, pixels) · dY_bandᵀ (pixels, K): the transposed
                    // product, because the GEMM reads a transposed operand fast as A and slowly as B
                    // (a column of B is gathered element by element), and dY is 9x smaller than cols.
                    gemm(m: g.patchSize, n: g.outChannels, k: pixels, a: .matrix(.rowMajor(columns, rowLength: pixels)),
                         b: .matrix(dyBand.transposed), c: dwT, ldc: g.outChannels, accumulate: true)
                    if dxAsConvolution { continue }
                    // dcols (C·kH·kW, pixels) = Wᵀ (C·kH·kW, K) · dY_band (K, pixels)
                    gemm(m: g.patchSize, n: pixels, k: g.outChannels, a: .transposed(w, rowLength: g.patchSize),
                         b: dyBand, c: columns, ldc: pixels)
                    col2imAdding(columns, g, images: images, rows: rows, rowLength: pixels, into: dx)
                }
            }
        }}}}
        // dW = (dWᵀ)ᵀ, and db[k] = Σ over images and pixels of dY[n, k, ...]: output channels shared
        // out to the cores.
        var biasSums = [Float](repeating: 0, count: g.outChannels)
        dWeight.withUnsafeMutablePointer { dw in dOut.withUnsafePointer { dy in biasSums.withUnsafeMutableBufferPointer { db in
            let (target, source) = (SendablePointer(dw), SendablePointer(dwT))
            let (gradient, sums) = (SendablePointer(UnsafeMutablePointer(mutating: dy)), SendablePointer(db.baseAddress!))
            Parallel.forEachChunk(of: g.outChannels, minimumChunk: 1) { channels in
                for k in channels {
                    for q in 0..<g.patchSize { target.pointer[k * g.patchSize + q] = source.pointer[q * g.outChannels + k] }
                    var total = 0.0
                    for n in 0..<batch { total += planeSum(gradient.pointer + (n * g.outChannels + k) * outPlane, count: outPlane) }
                    sums.pointer[k] = Float(total)
                }
            }
        }}}
        let dBias = Tensor(shape: [g.outChannels], scalars: biasSums)
        if dxAsConvolution {
            // Directly, as in the training forward: gradients do not depend on Winograd's rounding.
            dx = Winograd.withoutIt {
                conv2d(dOut, weight: turnedKernel(weight), bias: nil, stride: 1, padding: g.kernelHeight - 1 - padding)
            }
        }
        return (dx, dWeight, dBias)
    }

    /// `Σ x[i]` over one image plane (`blockSums`).
    @inline(__always)
    static func planeSum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        blockSums(count, vector: { eight(x, $0) }, scalar: { x[$0] })
    }

    /// W′ of the stride-1 backward, `(C_in, C_out, kH, kW)`: `W′[c, k, ky, kx] = W[k, c, kH−1−ky, kW−1−kx]`.
    /// Turning a window by 180° reverses its `kH·kW` numbers, so each (c, k) is one reversed copy.
    static func turnedKernel(_ weight: Tensor) -> Tensor {
        let (outChannels, inChannels) = (weight.shape[0], weight.shape[1])
        let window = weight.shape[2] * weight.shape[3]
        var turned = Tensor(shape: [inChannels, outChannels, weight.shape[2], weight.shape[3]], unsafeUninitialized: { _ in })
        weight.withUnsafePointer { w in turned.withUnsafeMutablePointer { t in
            let (source, target) = (SendablePointer(UnsafeMutablePointer(mutating: w)), SendablePointer(t))
            Parallel.forEachChunk(of: inChannels, minimumChunk: max(1, 16_384 / max(1, outChannels * window))) { channels in
                for c in channels {
                    for k in 0..<outChannels {
                        let from = source.pointer + (k * inChannels + c) * window, to = target.pointer + (c * outChannels + k) * window
                        for j in 0..<window { to[j] = from[window - 1 - j] }
                    }
                }
            }
        }}
        return turned
    }

    /// The im2col matrix of output rows `rows` of `images`: `cols[(c·kH + ky)·kW + kx, pixel] =
    /// x[n, c, oy·s + ky − p, ox·s + kx − p]` (zero in the padding), with the images' pixels side by
    /// side, each counted from the band's first row, and rows of `cols` `rowLength` apart. Patch
    /// rows are shared out to the cores.
    static func im2col(_ x: UnsafePointer<Float>, _ g: Conv2DGeometry, images: Range<Int>, rows: Range<Int>,
                       into columns: UnsafeMutablePointer<Float>, rowLength pixels: Int) {
        if rows == 0..<g.outHeight && g.padding > 0 {
            return wholeImagesIm2col(x, g, images: images, into: columns, rowLength: pixels)
        }
        let target = SendablePointer(columns), source = SendablePointer(UnsafeMutablePointer(mutating: x))
        let imagePixels = rows.count * g.outWidth
        Parallel.forEachChunk(of: g.patchSize, minimumChunk: max(1, 16_384 / pixels)) { patchRows in
            for q in patchRows {
                let (c, ky, kx) = (q / (g.kernelHeight * g.kernelWidth), q / g.kernelWidth % g.kernelHeight, q % g.kernelWidth)
                let inside = g.insideColumns(kx)
                for (i, n) in images.enumerated() {
                    let plane = source.pointer + (n * g.inChannels + c) * g.inHeight * g.inWidth
                    for (r, oy) in rows.enumerated() {
                        let row = target.pointer + q * pixels + i * imagePixels + r * g.outWidth
                        let iy = oy * g.stride + ky - g.padding
                        guard iy >= 0 && iy < g.inHeight else { row.update(repeating: 0, count: g.outWidth); continue }
                        // Zeros left and right of the picture, its pixels in between.
                        row.update(repeating: 0, count: inside.lowerBound)
                        let line = plane + iy * g.inWidth + kx - g.padding
                        for ox in inside { row[ox] = line[ox * g.stride] }
                        (row + inside.upperBound).update(repeating: 0, count: g.outWidth - inside.upperBound)
                    }
                }
            }
        }
    }

    /// `im2col` for whole padded images, the case of small images batched side by side. The images
    /// are first copied with their zero border written out; then every patch row of every image is
    /// one branch-free gather through a table of the output pixels' offsets,
    ///
    ///     cols[q, i·plane + p] = padded[i, c, ky + oy·s, kx + ox·s]     p = oy·W_out + ox,
    ///
    /// instead of a loop per output row that checks each pixel against the border (an 8x8 image's
    /// rows are too short for that loop's overhead to pay). With stride 1, an output row of 8 or 4
    /// pixels is one vector move.
    private static func wholeImagesIm2col(_ x: UnsafePointer<Float>, _ g: Conv2DGeometry, images: Range<Int>,
                                          into columns: UnsafeMutablePointer<Float>, rowLength pixels: Int) {
        let (padded, paddedGeometry) = paddedImages(x, g, images: images)
        defer { padded.deallocate() }
        let paddedWidth = paddedGeometry.inWidth, paddedPlane = paddedGeometry.inHeight * paddedWidth
        let outPlane = g.outHeight * g.outWidth
        let target = SendablePointer(padded)
        // Where output pixel p's window starts in a padded plane.
        var offsets = [Int](repeating: 0, count: outPlane)
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth { offsets[oy * g.outWidth + ox] = oy * g.stride * paddedWidth + ox * g.stride }
        }
        let window = g.kernelHeight * g.kernelWidth, output = SendablePointer(columns)
        offsets.withUnsafeBufferPointer { offsets in
            let table = SendablePointer(UnsafeMutablePointer(mutating: offsets.baseAddress!))
            Parallel.forEachChunk(of: g.patchSize, minimumChunk: max(1, 16_384 / pixels)) { patchRows in
                for q in patchRows {
                    let (c, ky, kx) = (q / window, q % window / g.kernelWidth, q % g.kernelWidth)
                    for i in 0..<images.count {
                        let corner = UnsafePointer(target.pointer + (i * g.inChannels + c) * paddedPlane + ky * paddedWidth + kx)
                        let row = output.pointer + q * pixels + i * outPlane
                        if g.stride == 1 && g.outWidth == 8 {
                            // An 8-pixel output row is 8 neighbouring padded pixels: one vector move.
                            for oy in 0..<g.outHeight {
                                UnsafeMutableRawPointer(row + oy * 8).storeBytes(
                                    of: UnsafeRawPointer(corner + oy * paddedWidth).loadUnaligned(as: SIMD8<Float>.self),
                                    as: SIMD8<Float>.self)
                            }
                        } else if g.stride == 1 && g.outWidth == 4 {
                            // A 4x4 latent's row: half a vector.
                            for oy in 0..<g.outHeight {
                                UnsafeMutableRawPointer(row + oy * 4).storeBytes(
                                    of: UnsafeRawPointer(corner + oy * paddedWidth).loadUnaligned(as: SIMD4<Float>.self),
                                    as: SIMD4<Float>.self)
                            }
                        } else {
                            for p in 0..<outPlane { row[p] = corner[table.pointer[p]] }
                        }
                    }
                }
            }
        }
    }

    /// `g` on its input with the zero border written out: padding 0, `2p` more rows and columns.
    static func paddedGeometry(_ g: Conv2DGeometry) -> Conv2DGeometry {
        var padded = g
        padded.padding = 0
        padded.inHeight += 2 * g.padding
        padded.inWidth += 2 * g.padding
        return padded
    }

    /// Images `images` of `x` with their zero border written out, `(images, C_in, H + 2p, W + 2p)`
    /// (the caller deallocates it), and `g` for them: the same convolution with padding 0.
    static func paddedImages(_ x: UnsafePointer<Float>, _ g: Conv2DGeometry, images: Range<Int>)
        -> (UnsafeMutablePointer<Float>, Conv2DGeometry) {
        let padded = paddedGeometry(g)
        let paddedWidth = padded.inWidth, paddedPlane = padded.inHeight * padded.inWidth
        let storage = UnsafeMutablePointer<Float>.allocate(capacity: images.count * g.inChannels * paddedPlane)
        let source = SendablePointer(UnsafeMutablePointer(mutating: x)), target = SendablePointer(storage)
        Parallel.forEachChunk(of: images.count * g.inChannels, minimumChunk: max(1, 16_384 / paddedPlane)) { planes in
            for plane in planes {
                let from = source.pointer + (images.lowerBound * g.inChannels + plane) * g.inHeight * g.inWidth
                let to = target.pointer + plane * paddedPlane
                if g.padding > 0 { to.update(repeating: 0, count: paddedPlane) }
                for y in 0..<g.inHeight {
                    (to + (y + g.padding) * paddedWidth + g.padding).update(from: from + y * g.inWidth, count: g.inWidth)
                }
            }
        }
        return (storage, padded)
    }

    /// The reverse of `im2col`: adds every entry of `cols` onto the input pixel it was read from.
    /// Channels are shared out to the cores: a channel's patch rows write only its own planes.
    static func col2imAdding(_ columns: UnsafeMutablePointer<Float>, _ g: Conv2DGeometry, images: Range<Int>, rows: Range<Int>,
                             rowLength pixels: Int, into dx: UnsafeMutablePointer<Float>) {
        let window = g.kernelHeight * g.kernelWidth, imagePixels = rows.count * g.outWidth
        let source = SendablePointer(columns), target = SendablePointer(dx)
        Parallel.forEachChunk(of: g.inChannels, minimumChunk: max(1, 16_384 / (window * pixels))) { channels in
            for c in channels {
                for q in (c * window)..<((c + 1) * window) {
                    let (ky, kx) = (q / g.kernelWidth % g.kernelHeight, q % g.kernelWidth)
                    let inside = g.insideColumns(kx)
                    for (i, n) in images.enumerated() {
                        let plane = target.pointer + (n * g.inChannels + c) * g.inHeight * g.inWidth
                        for (r, oy) in rows.enumerated() {
                            let iy = oy * g.stride + ky - g.padding
                            guard iy >= 0 && iy < g.inHeight else { continue }
                            let row = source.pointer + q * pixels + i * imagePixels + r * g.outWidth
                            let line = plane + iy * g.inWidth + kx - g.padding
                            for ox in inside { line[ox * g.stride] += row[ox] }
                        }
                    }
                }
            }
        }
    }
}

extension Conv2DGeometry {
    /// The output columns `ox` whose input column `ox·s + kx − p` lies inside the picture.
    func insideColumns(_ kx: Int) -> Range<Int> {
        // ox·s + kx − p ≥ 0  and  ox·s + kx − p ≤ W − 1
        let first = max(0, (padding - kx + stride - 1) / stride)
        let last = (inWidth - 1 - kx + padding) >= 0 ? min(outWidth - 1, (inWidth - 1 - kx + padding) / stride) : -1
        return first..<max(first, last + 1)
    }
}
