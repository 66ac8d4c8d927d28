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
///
/// Small images (an 8x8 latent has 64 pixels, four panels) come several at a time, already padded
/// (`paddedImages`): their pixels side by side as the columns, `images` of them `imageStride`
/// numbers apart. A panel then holds whole output rows of 8, 4, 2 or 1 pixels, each row of each
/// patch row a few neighbouring input pixels.
struct ImagePatches: @unchecked Sendable {
    let image: UnsafePointer<Float>
    let geometry: Conv2DGeometry
    /// The output row that column 0 stands for (convolutions run in bands of rows).
    let firstRow: Int
    /// Whole images side by side (padding 0, stride 1, output rows that divide a panel).
    let images: Int, imageStride: Int
    /// Patch row p = (c·kH + ky)·kW + kx reads input pixels at `windowOffsets[p]` from the window's
    /// top-left corner: channel plane c, row ky, column kx. Worked out once for every patch row, so
    /// that packing even a single panel does no division.
    private let windowOffsets: [Int]

    init(image: UnsafePointer<Float>, geometry g: Conv2DGeometry, firstRow: Int) {
        self.init(image: image, geometry: g, firstRow: firstRow, images: 1)
    }

    /// The patches of `images` whole images stored one after the other, with their zero border
    /// written out (`g.padding` 0, stride 1, `W_out` dividing 16: see `takesWholeRows`).
    init(paddedImages: UnsafePointer<Float>, geometry g: Conv2DGeometry, images: Int) {
        precondition(Self.takesWholeRows(g), "ImagePatches: \(g) is not a padded stride-1 geometry with short rows")
        self.init(image: paddedImages, geometry: g, firstRow: 0, images: images)
    }

    /// Whether a panel of `g`'s patches is whole output rows read without a border check.
    static func takesWholeRows(_ g: Conv2DGeometry) -> Bool {
        g.padding == 0 && g.stride == 1 && g.outWidth <= nr && nr % g.outWidth == 0
    }

    private init(image: UnsafePointer<Float>, geometry g: Conv2DGeometry, firstRow: Int, images: Int) {
        self.image = image
        self.geometry = g
        self.firstRow = firstRow
        self.images = images
        self.imageStride = g.inChannels * g.inHeight * g.inWidth
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
        if images > 1 || (Self.takesWholeRows(g) && g.outWidth < nr) {
            return packWholeRows(columns: columns, depth: depth, into: packed)
        }
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

    /// Panels of whole output rows (`takesWholeRows`), of any image: row `r` of a panel is output
    /// pixels `r·W_out ..< (r+1)·W_out` of it, which for patch row p are `W_out` neighbouring input
    /// pixels from `windowOffsets[p]` past that output row's window corner. Zero past the last image.
    private func packWholeRows(columns: Range<Int>, depth: Range<Int>, into packed: UnsafeMutablePointer<Float>) {
        let g = geometry, width = g.outWidth, rowsPerPanel = nr / width, plane = g.outHeight * g.outWidth
        let end = images * plane
        var corners = [Int](repeating: -1, count: rowsPerPanel)
        windowOffsets.withUnsafeBufferPointer { offsets in
            for (panel, first) in stride(from: columns.lowerBound, to: columns.upperBound, by: nr).enumerated() {
                // Where each row's window corner is, or -1 past the last image.
                for r in 0..<rowsPerPanel {
                    let column = first + r * width
                    if column >= end || column >= columns.upperBound { corners[r] = -1; continue }
                    let (n, pixel) = column.quotientAndRemainder(dividingBy: plane)
                    corners[r] = n * imageStride + (firstRow + pixel / width) * g.inWidth
                }
                let out = packed + panel * nr * depth.count
                for (step, p) in depth.enumerated() {
                    let target = out + step * nr
                    for r in 0..<rowsPerPanel {
                        let row = target + r * width
                        guard corners[r] >= 0 else { row.update(repeating: 0, count: width); continue }
                        let source = UnsafeRawPointer(image + corners[r] + offsets[p])
                        switch width {
                        case 8: UnsafeMutableRawPointer(row).storeBytes(of: source.loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
                        case 4: UnsafeMutableRawPointer(row).storeBytes(of: source.loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
                        case 2: UnsafeMutableRawPointer(row).storeBytes(of: source.loadUnaligned(as: SIMD2<Float>.self), as: SIMD2<Float>.self)
                        default: row.update(from: source.assumingMemoryBound(to: Float.self), count: width)
                        }
                    }
                }
            }
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
