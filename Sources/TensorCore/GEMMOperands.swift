// The operands of a matrix product, C = A · B, as both GEMMs see them (`Reference.gemm`, the plain
// loops, and `gemm`, the fast one): a matrix in memory with any strides, Float32 or 16-bit, and a
// bias to add to every output.

/// Anything whose numbers can be read one at a time as Float32: `MatrixOperand` and `HalfMatrixOperand`.
protocol MatrixElements {
    func element(_ row: Int, _ column: Int) -> Float
    /// The same matrix starting at `(row, column)`.
    func offset(row: Int, column: Int) -> Self
}

/// A read-only matrix in memory with arbitrary strides, so that a transpose costs nothing:
/// element `(row, column)` is at `pointer[row * rowStride + column * columnStride]`.
public struct MatrixOperand: MatrixElements {
    public var pointer: UnsafePointer<Float>
    public var rowStride: Int
    public var columnStride: Int

    public init(_ pointer: UnsafePointer<Float>, rowStride: Int, columnStride: Int) {
        self.pointer = pointer
        self.rowStride = rowStride
        self.columnStride = columnStride
    }

    /// A row-major matrix whose rows are `rowLength` apart.
    public static func rowMajor(_ pointer: UnsafePointer<Float>, rowLength: Int) -> MatrixOperand {
        MatrixOperand(pointer, rowStride: rowLength, columnStride: 1)
    }

    /// The transpose of a row-major matrix whose rows are `rowLength` apart. A linear layer's
    /// weight `(D_out, D_in)` used as the right operand `(D_in, D_out)` is exactly this.
    public static func transposed(_ pointer: UnsafePointer<Float>, rowLength: Int) -> MatrixOperand {
        MatrixOperand(pointer, rowStride: 1, columnStride: rowLength)
    }

    /// The same matrix starting at `(row, column)`.
    func offset(row: Int, column: Int) -> MatrixOperand {
        MatrixOperand(pointer + row * rowStride + column * columnStride, rowStride: rowStride, columnStride: columnStride)
    }

    /// The same numbers seen as the transposed matrix: strides swapped, nothing copied.
    var transposed: MatrixOperand { MatrixOperand(pointer, rowStride: columnStride, columnStride: rowStride) }

    @inline(__always) func element(_ row: Int, _ column: Int) -> Float {
        pointer[row * rowStride + column * columnStride]
    }
}

/// A bias added to C where the product is first stored, so that no separate pass writes it:
/// `C[i, j] = bias[i] + Σ_p A[i, p] · B[p, j]` per row (a convolution's output channels are C's
/// rows) or `bias[j] + Σ ...` per column (a linear layer's output features are C's columns).
public enum GEMMBias {
    case none
    case perRow(UnsafePointer<Float>)
    case perColumn(UnsafePointer<Float>)

    /// The bias of the block of C that starts at `(row, column)`.
    func offset(row: Int, column: Int) -> GEMMBias {
        switch self {
        case .none: return .none
        case .perRow(let bias): return .perRow(bias + row)
        case .perColumn(let bias): return .perColumn(bias + column)
        }
    }

    /// The bias of element `(row, column)`.
    @inline(__always) func value(_ row: Int, _ column: Int) -> Float {
        switch self {
        case .none: return 0
        case .perRow(let bias): return bias[row]
        case .perColumn(let bias): return bias[column]
        }
    }

    /// Runs `body` with a layer's optional bias vector as the GEMM's bias, one number per row of C
    /// (`perRow`) or per column.
    static func with<Result>(_ bias: Tensor?, perRow: Bool, _ body: (GEMMBias) -> Result) -> Result {
        guard let bias else { return body(.none) }
        return bias.withUnsafePointer { body(perRow ? .perRow($0) : .perColumn($0)) }
    }
}


/// A read-only matrix of 16-bit numbers with arbitrary strides, like `MatrixOperand`: element
/// `(row, column)` is the 16-bit number at index `row * rowStride + column * columnStride`.
public struct HalfMatrixOperand: MatrixElements {
    public var bytes: UnsafeRawPointer
    public var rowStride: Int
    public var columnStride: Int
    public var format: HalfTensor.Format

    public init(_ bytes: UnsafeRawPointer, format: HalfTensor.Format, rowStride: Int, columnStride: Int) {
        self.bytes = bytes
        self.format = format
        self.rowStride = rowStride
        self.columnStride = columnStride
    }

    /// A row-major matrix whose rows are `rowLength` numbers apart.
    public static func rowMajor(_ bytes: UnsafeRawPointer, format: HalfTensor.Format, rowLength: Int) -> HalfMatrixOperand {
        HalfMatrixOperand(bytes, format: format, rowStride: rowLength, columnStride: 1)
    }

    /// The transpose of a row-major matrix: a linear layer's `(D_out, D_in)` weight as the right operand.
    public static func transposed(_ bytes: UnsafeRawPointer, format: HalfTensor.Format, rowLength: Int) -> HalfMatrixOperand {
        HalfMatrixOperand(bytes, format: format, rowStride: 1, columnStride: rowLength)
    }

    var transposed: HalfMatrixOperand {
        HalfMatrixOperand(bytes, format: format, rowStride: columnStride, columnStride: rowStride)
    }

    /// Element `(row, column)`, widened.
    @inline(__always) func element(_ row: Int, _ column: Int) -> Float {
        let bits = bytes.loadUnaligned(fromByteOffset: 2 * (row * rowStride + column * columnStride), as: UInt16.self)
        return format == .float16 ? float16BitsToFloat(bits) : bfloat16BitsToFloat(bits)
    }

    /// The same matrix starting at `(row, column)`.
    func offset(row: Int, column: Int) -> HalfMatrixOperand {
        HalfMatrixOperand(bytes + 2 * (row * rowStride + column * columnStride), format: format,
                          rowStride: rowStride, columnStride: columnStride)
    }
}
