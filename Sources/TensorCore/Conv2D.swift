// 2-D convolution, the workhorse of the UNet's residual blocks and of the VAE.
//
// Fast path: im2col + GEMM. For every output pixel, the `C_in · kH · kW` input values under the
// kernel window are copied into one column of a matrix; the convolution is then a single matrix
// product `weight (C_out, C_in·kH·kW) · columns (C_in·kH·kW, H_out·W_out)`. The column matrix
// is built a band of output rows at a time, so its memory stays bounded even at 512x512.
//
// Reference: `conv2dReference`, the seven nested loops of the definition, kept as the test oracle.

/// Geometry of one convolution, shared by the fast and reference versions.
public struct Conv2DGeometry: Equatable {
    public var inChannels, outChannels, kernelHeight, kernelWidth, stride, padding: Int
    public var inHeight, inWidth: Int

    /// `H_out = ⌊(H + 2·padding − kH) / stride⌋ + 1`
    public var outHeight: Int { (inHeight + 2 * padding - kernelHeight) / stride + 1 }
    public var outWidth: Int { (inWidth + 2 * padding - kernelWidth) / stride + 1 }
    /// Rows of the im2col matrix: one per weight of a single output channel.
    public var patchSize: Int { inChannels * kernelHeight * kernelWidth }

    init(input: [Int], weight: [Int], stride: Int, padding: Int) {
        precondition(input.count == 4, "conv2d input must be (N, C, H, W), got \(input)")
        precondition(weight.count == 4, "conv2d weight must be (C_out, C_in, kH, kW), got \(weight)")
        precondition(input[1] == weight[1], "conv2d: input has \(input[1]) channels, weight expects \(weight[1])")
        inChannels = weight[1]; outChannels = weight[0]
        kernelHeight = weight[2]; kernelWidth = weight[3]
        self.stride = stride; self.padding = padding
        inHeight = input[2]; inWidth = input[3]
        precondition(outHeight > 0 && outWidth > 0, "conv2d: kernel larger than padded input \(input)")
    }
}

/// Largest im2col band, in floats (24 MB): enough rows to keep the GEMM efficient, small enough
/// not to matter for memory, and below the size malloc would hand out as fresh pages.
let im2colBudget = 6 << 20

extension Tensor {
    /// Convolution with PyTorch's `nn.Conv2d` semantics (cross-correlation, zero padding).
    ///
    /// - Parameters:
    ///   - weight: `(C_out, C_in, kH, kW)`.
    ///   - bias: `(C_out)`, or nil.
    /// - Returns: `(N, C_out, H_out, W_out)` for input `(N, C_in, H, W)`.
    public func conv2d(weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
        let g = Conv2DGeometry(input: shape, weight: weight.shape, stride: stride, padding: padding)
        let batch = shape[0]
        let outPlane = g.outHeight * g.outWidth
        // The output starts as the bias, broadcast over the pixels; the GEMMs accumulate onto it.
        var out = Tensor(shape: [batch, g.outChannels, g.outHeight, g.outWidth], unsafeUninitialized: { y in
            for plane in 0..<(batch * g.outChannels) {
                (y.baseAddress! + plane * outPlane).update(repeating: bias?.scalars[plane % g.outChannels] ?? 0, count: outPlane)
            }
        })
        let pointwise = g.kernelHeight == 1 && g.kernelWidth == 1 && stride == 1 && padding == 0

        // Output rows per band, so that the band's column matrix fits the budget.
        let bandRows = max(1, min(g.outHeight, im2colBudget / max(1, g.patchSize * g.outWidth)))
        // im2col writes every element of the band, so the buffer needs no zero-filling.
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: pointwise ? 0 : g.patchSize * bandRows * g.outWidth)
        defer { columns.deallocate() }

        withUnsafePointer { x in
            weight.withUnsafePointer { w in
                out.withUnsafeMutablePointer { y in
                    for n in 0..<batch {
                        let image = x + n * g.inChannels * g.inHeight * g.inWidth
                        let result = y + n * g.outChannels * outPlane
                        if pointwise {
                            // A 1x1 convolution is already a matrix product over the pixels.
                            gemm(m: g.outChannels, n: outPlane, k: g.inChannels,
                                 a: .rowMajor(w, rowLength: g.inChannels),
                                 b: .rowMajor(image, rowLength: outPlane),
                                 c: result, ldc: outPlane, accumulate: bias != nil)
                            continue
                        }
                        for firstRow in Swift.stride(from: 0, to: g.outHeight, by: bandRows) {
                            let rows = min(bandRows, g.outHeight - firstRow)
                            let width = rows * g.outWidth
                            Profiler.measure("im2col") {
                                im2col(image, g, rows: firstRow..<(firstRow + rows), into: columns)
                            }
                            gemm(m: g.outChannels, n: width, k: g.patchSize,
                                 a: .rowMajor(w, rowLength: g.patchSize),
                                 b: .rowMajor(columns, rowLength: width),
                                 c: result + firstRow * g.outWidth, ldc: outPlane,
                                 accumulate: bias != nil)
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Builds the column matrix for output rows `rows`:
/// `col[(c·kH + ky)·kW + kx, (oy − rows.lower)·W_out + ox] = x[c, oy·s + ky − p, ox·s + kx − p]`
/// (zero where the window hangs over the padding). Parallel over the patch rows.
func im2col(_ image: UnsafePointer<Float>, _ g: Conv2DGeometry, rows: Range<Int>,
            into col: UnsafeMutablePointer<Float>) {
    let width = rows.count * g.outWidth
    let dst = SendablePointer(col)
    let src = SendablePointer(UnsafeMutablePointer(mutating: image))
    Parallel.forEach(g.inChannels) { c in
        let plane = src.pointer + c * g.inHeight * g.inWidth
        for ky in 0..<g.kernelHeight {
            for kx in 0..<g.kernelWidth {
                var out = dst.pointer + ((c * g.kernelHeight + ky) * g.kernelWidth + kx) * width
                for oy in rows {
                    let iy = oy * g.stride + ky - g.padding
                    if iy < 0 || iy >= g.inHeight {
                        out.update(repeating: 0, count: g.outWidth)
                    } else if g.stride == 1 {
                        // Stride 1: the row is the input row shifted by kx − padding; copy the
                        // part inside the image, zero the part hanging over the edges.
                        let line = plane + iy * g.inWidth
                        let shift = kx - g.padding
                        let first = max(0, -shift), last = min(g.outWidth, g.inWidth - shift)
                        if first > 0 { out.update(repeating: 0, count: first) }
                        if last > first { (out + first).update(from: line + (first + shift), count: last - first) }
                        if last < g.outWidth { (out + max(first, last)).update(repeating: 0, count: g.outWidth - max(first, last)) }
                    } else {
                        let line = plane + iy * g.inWidth
                        for ox in 0..<g.outWidth {
                            let ix = ox * g.stride + kx - g.padding
                            out[ox] = (ix >= 0 && ix < g.inWidth) ? line[ix] : 0
                        }
                    }
                    out += g.outWidth
                }
            }
        }
    }
}

/// The definition of convolution, written out: for every output element, sum over input channels
/// and the kernel window. Slow; the test oracle for `conv2d`.
public func conv2dReference(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
    let g = Conv2DGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
    let batch = x.shape[0]
    var out = Tensor.zeros([batch, g.outChannels, g.outHeight, g.outWidth])
    for n in 0..<batch {
        for co in 0..<g.outChannels {
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    var sum: Float = bias?.scalars[co] ?? 0
                    for ci in 0..<g.inChannels {
                        for ky in 0..<g.kernelHeight {
                            for kx in 0..<g.kernelWidth {
                                let iy = oy * stride + ky - padding, ix = ox * stride + kx - padding
                                if iy < 0 || iy >= g.inHeight || ix < 0 || ix >= g.inWidth { continue }
                                sum += x[n, ci, iy, ix] * weight[co, ci, ky, kx]
                            }
                        }
                    }
                    out[n, co, oy, ox] = sum
                }
            }
        }
    }
    return out
}
