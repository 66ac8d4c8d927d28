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
