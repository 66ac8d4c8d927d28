// The image patches a convolution multiplies, as the fast GEMM's right operand: the im2col
// matrix of Fast+Conv2d.swift, packed panel by panel straight from the image and never stored.

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
