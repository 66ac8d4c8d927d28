// Packing: copying a block of an operand into the exact order the micro-kernel reads it.
//
// The kernel takes, for each of `kc` steps, `tileRows` consecutive numbers of A (one column of a
// panel of 2, 6 or 14 rows, by instruction set) and 16 consecutive numbers of B (one row of a
// 16-column panel). Packing puts them side by
// side once, so the kernel reads both with unit stride from L1/L2, whatever the original strides
// were: transposed operands cost nothing extra, and edges are zero-padded to whole panels.
//
// Both operands are packed the same way if B is seen as its transpose: a "panel" is `width`
// consecutive *outer* indices (rows of A, columns of B) and the packed panel stores, for every
// depth step `p`, the `width` values `X[outer + 0..<width, p]`.

/// Where `serialGEMM` gets its panels: a plain matrix (Float32 or 16-bit) or a convolution's
/// patches, packed block by block into a scratch buffer as the loop nest reaches them, or an
/// operand packed in full beforehand.
enum PanelSource {
    case matrix(MatrixOperand)
    /// 16-bit numbers, widened as they are packed (GEMM+HalfPrecision.swift).
    case halves(HalfMatrixOperand)
    /// B of a convolution, `(C_in·kH·kW, pixels)`, read straight from the image (see Conv2D.swift).
    case patches(ImagePatches)
    case packed(PackedMatrix)

    /// Whether the operand is already in the micro-kernel's layout.
    var isPacked: Bool {
        if case .packed = self { return true }
        return false
    }

    /// A scratch buffer for blocks of `outer x depth`, if this source packs as it goes.
    func scratch(panelWidth: Int, outer: Int, depth: Int) -> UnsafeMutablePointer<Float>? {
        if case .packed = self { return nil }
        return .allocate(capacity: roundUp(outer, to: panelWidth) * depth)
    }

    /// The packed panels of block `outer x depth` (`outer` starts on a panel boundary).
    func panels(outer: Range<Int>, depth: Range<Int>, panelWidth: Int,
                scratch: UnsafeMutablePointer<Float>?) -> UnsafePointer<Float> {
        if case .packed(let packed) = self { return packed.panels(startingAt: outer.lowerBound, depth: depth) }
        pack(outer: outer, depth: depth, width: panelWidth, into: scratch!)
        return UnsafePointer(scratch!)
    }

    /// Packs block `outer x depth` in panels of `width`: 16 (`nr`) means this is B (outer = its
    /// columns, so the matrix is read as its transpose), any other width that this is A (outer =
    /// its rows; no register tile has 16 rows).
    func pack(outer: Range<Int>, depth: Range<Int>, width: Int, into packed: UnsafeMutablePointer<Float>) {
        switch self {
        case .matrix(let x):
            packPanels(width == nr ? x.transposed : x, outer: outer, depth: depth, width: width, into: packed)
        case .halves(let x):
            packHalfPanels(width == nr ? x.transposed : x, outer: outer, depth: depth, width: width, into: packed)
        case .patches(let patches):
            precondition(width == nr, "image patches are the right operand")
            patches.pack(columns: outer, depth: depth, into: packed)
        case .packed:
            preconditionFailure("already packed")
        }
    }
}

/// A whole operand in the micro-kernel's layout, packed once (on all cores) and then read by
/// every tile that needs it. The depth slices (`depthSlices`) follow each other; inside a slice, panels
/// of `width` outer indices follow each other, each `depth × width` numbers.
final class PackedMatrix: @unchecked Sendable {
    private let paddedOuter: Int
    private let storage: UnsafeMutablePointer<Float>

    /// Packs `outer` rows (width `tileRows`) or columns (width 16) of `source`, over `depth` steps.
    init(_ source: PanelSource, outer: Int, depth: Int, width: Int, onAllCores: Bool = true) {
        paddedOuter = roundUp(outer, to: width)
        storage = .allocate(capacity: max(1, paddedOuter * depth))
        // A large packed operand (a layer's weights, up to 52 MB) asks for huge pages, as big
        // tensors do (MemoryHints.swift).
        MemoryHints.adviseHugePages(UnsafeMutableBufferPointer(start: storage, count: paddedOuter * depth))
        let panelCount = paddedOuter / width
        let base = SendablePointer(storage), paddedOuter = paddedOuter
        let packSome = { (panels: Range<Int>) in
            for slice in depthSlices(depth) {
                let pc = slice.lowerBound
                let first = panels.lowerBound * width
                source.pack(outer: first..<min(outer, panels.upperBound * width), depth: slice, width: width,
                            into: base.pointer + pc * paddedOuter + first * slice.count)
            }
        }
        if onAllCores {
            Parallel.forEachChunk(of: panelCount, minimumChunk: 8, packSome)
        } else {
            packSome(0..<panelCount)
        }
    }

    deinit { storage.deallocate() }

    /// The packed panels from outer index `first` (a panel boundary) on, for the depth slice `depth`
    /// (one of `depthSlices(depth)`).
    func panels(startingAt first: Int, depth: Range<Int>) -> UnsafePointer<Float> {
        UnsafePointer(storage + depth.lowerBound * paddedOuter + first * depth.count)
    }
}

@inline(__always) func roundUp(_ value: Int, to multiple: Int) -> Int {
    (value + multiple - 1) / multiple * multiple
}

/// Packs `X[outer, depth]` as consecutive panels of `width` outer indices; panel `q` holds
/// `packed[q·width·D + p·width + i] = X[outer.lower + q·width + i, depth.lower + p]`, zero where
/// `outer` runs out.
func packPanels(_ x: MatrixOperand, outer: Range<Int>, depth: Range<Int>, width: Int,
                into packed: UnsafeMutablePointer<Float>) {
    let fullPanels = outer.count / width
    if width == nr && x.rowStride == 1 && fullPanels > 0 {
        // B row-major: one row of B feeds all the panels. Reading it left to right, 16 values per
        // panel, streams through memory; going panel by panel instead would jump a whole row
        // ahead (often tens of KB) for every 16 values.
        let panelSize = nr * depth.count
        for (step, p) in depth.enumerated() {
            var source = UnsafeRawPointer(x.pointer + (outer.lowerBound &+ p &* x.columnStride))
            var target = UnsafeMutableRawPointer(packed + step * nr)
            for _ in 0..<fullPanels {
                target.storeBytes(of: source.loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
                target.storeBytes(of: source.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self),
                                  toByteOffset: 32, as: SIMD8<Float>.self)
                source += nr * MemoryLayout<Float>.stride
                target += panelSize * MemoryLayout<Float>.stride
            }
        }
        let done = fullPanels * nr
        if done < outer.count {
            packPanel(x, outer: (outer.lowerBound + done)..<outer.upperBound, depth: depth, width: width,
                      into: packed + fullPanels * panelSize)
        }
        return
    }
    for (panel, first) in stride(from: outer.lowerBound, to: outer.upperBound, by: width).enumerated() {
        packPanel(x, outer: first..<min(outer.upperBound, first + width), depth: depth, width: width,
                  into: packed + panel * width * depth.count)
    }
}

/// One panel: for every depth step, `width` values of consecutive outer indices.
@inline(__always)
func packPanel(_ x: MatrixOperand, outer: Range<Int>, depth: Range<Int>, width: Int,
               into packed: UnsafeMutablePointer<Float>) {
    var out = packed
    let full = outer.count == width
    if full && width != nr && x.columnStride == 1 {
        // A row-major: read the panel's rows side by side so the writes are sequential. Each
        // register-tile height gets its own copy of the loop, with the row count known.
        switch width {
        case 2: packRowsSideBySide(x, first: outer.lowerBound, depth: depth, rows: 2, into: packed)
        case 6: packRowsSideBySide(x, first: outer.lowerBound, depth: depth, rows: 6, into: packed)
        case 14: packRowsSideBySide(x, first: outer.lowerBound, depth: depth, rows: 14, into: packed)
        default: packRowsSideBySide(x, first: outer.lowerBound, depth: depth, rows: width, into: packed)
        }
    } else if full && x.rowStride == 1 {
        // A stored transposed (or B row-major): the panel's `width` values at each depth step are
        // neighbours in memory, one short copy per step.
        switch width {
        case 2: copySteps(x, first: outer.lowerBound, depth: depth, width: 2, into: packed)
        case 6: copySteps(x, first: outer.lowerBound, depth: depth, width: 6, into: packed)
        case 14: copySteps(x, first: outer.lowerBound, depth: depth, width: 14, into: packed)
        case 16: copySteps(x, first: outer.lowerBound, depth: depth, width: 16, into: packed)
        default: copySteps(x, first: outer.lowerBound, depth: depth, width: width, into: packed)
        }
    } else {
        for p in depth {
            for i in 0..<width {
                out[i] = i < outer.count ? x.pointer[(outer.lowerBound &+ i) &* x.rowStride &+ p &* x.columnStride] : 0
            }
            out += width
        }
    }
}

/// `width` neighbouring values per depth step: `packed[p·width + i] = X[first + i, depth.lower + p]`
/// for X with unit row stride.
@inline(__always)
private func copySteps(_ x: MatrixOperand, first: Int, depth: Range<Int>, width: Int,
                       into packed: UnsafeMutablePointer<Float>) {
    var out = packed
    for p in depth {
        let source = x.pointer + (first &+ p &* x.columnStride)
        for i in 0..<width { out[i] = source[i] }
        out += width
    }
}

/// `rows` rows of a row-major matrix, from row `first`, interleaved: `packed[p·rows + i] =
/// X[first + i, depth.lower + p]`. The rows are read side by side, so the writes are sequential.
@inline(__always)
private func packRowsSideBySide(_ x: MatrixOperand, first: Int, depth: Range<Int>, rows: Int,
                                into packed: UnsafeMutablePointer<Float>) {
    let start = x.pointer + (first &* x.rowStride &+ depth.lowerBound)
    var out = packed
    var p = 0
    if rows == 6 {
        // Eight steps at a time: one vector load per row, then the 6x8 block written step by step.
        while p + 8 <= depth.count {
            let r0 = eight(start, p), r1 = eight(start + x.rowStride, p), r2 = eight(start + 2 &* x.rowStride, p)
            let r3 = eight(start + 3 &* x.rowStride, p), r4 = eight(start + 4 &* x.rowStride, p)
            let r5 = eight(start + 5 &* x.rowStride, p)
            for j in 0..<8 {
                out[0] = r0[j]; out[1] = r1[j]; out[2] = r2[j]; out[3] = r3[j]; out[4] = r4[j]; out[5] = r5[j]
                out += 6
            }
            p += 8
        }
    }
    while p < depth.count {
        for i in 0..<rows { out[i] = start[i &* x.rowStride &+ p] }
        out += rows
        p += 1
    }
}

