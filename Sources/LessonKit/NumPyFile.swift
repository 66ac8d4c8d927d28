import Foundation
import FrameExport
import TensorCore

/// Reads and writes NumPy's `.npy` format, so a tensor can be looked at in Python with
/// `numpy.load("latents.npy")`.
///
/// A `.npy` file is a 6-byte magic string `\x93NUMPY`, a version (1.0 here), the length of a text
/// header, the header itself (a Python dict literal), and then the raw numbers:
///
///     \x93NUMPY \x01\x00  <u16 length>  {'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 64, 64), }
///     <1·4·64·64 little-endian float32 values, row-major>
///
/// The header is padded with spaces and a newline so the data starts at a multiple of 64 bytes.
/// Only what a float32 tensor needs is supported: dtype `'<f4'` (little-endian float32), C order;
/// anything else is refused with a message that says how to convert it in Python.
///
/// ```swift
/// try NumPyFile.write(latents, to: "latents.npy")       // (1, 4, 64, 64)
/// let again = try NumPyFile.read("latents.npy")
/// ```
public enum NumPyFile {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// Writes `tensor` as float32 in C order, atomically (a complete file or none).
    public static func write(_ tensor: Tensor, to path: String) throws {
        let shape = tensor.shape.map(String.init).joined(separator: ", ") + (tensor.rank == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape)), }"
        // magic (6) + version (2) + length (2) + header + "\n" must be a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data(magic + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.reserveCapacity(data.count + 4 * tensor.count)
        for value in tensor.scalars {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        }
        try AtomicFile.write(data, to: path)
    }

    /// Reads a float32 array in C order.
    ///
    /// - Throws: `LessonError` naming the file and what is wrong with it: not a `.npy` file, a
    ///   dtype other than little-endian float32 (with the fix), Fortran order, or a size that does
    ///   not match the shape.
    public static func read(_ path: String) throws -> Tensor {
        func fail(_ reason: String) -> LessonError { LessonError("'\(path)' \(reason)") }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw fail("cannot be read (\((error as NSError).localizedDescription))")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw fail("is not a NumPy .npy file (it does not start with \\x93NUMPY)")
        }
        let major = bytes[6]
        let headerStart: Int, headerLength: Int
        switch major {
        case 1:
            headerStart = 10
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("is cut off inside its header") }
            headerStart = 12
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        default:
            throw fail("has .npy format version \(major), which this lesson does not know (1, 2 or 3)")
        }
        guard headerStart + headerLength <= bytes.count else { throw fail("is cut off inside its header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)

        guard let descr = value(of: "descr", in: header, until: ","),
              let order = value(of: "fortran_order", in: header, until: ","),
              let shapeText = value(of: "shape", in: header, until: ")") else {
            throw fail("has a header this lesson cannot read: \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let dtype = descr.trimmingCharacters(in: CharacterSet(charactersIn: "' \""))
        guard dtype == "<f4" else {
            throw fail("holds \(describe(dtype)) numbers ('\(dtype)'); it must be float32 ('<f4'): in Python, np.save(path, array.astype(np.float32))")
        }
        guard order == "False" else {
            throw fail("is stored in Fortran order; save it with np.save(path, np.ascontiguousarray(array))")
        }
        let parts = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() ")).split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shape = parts.compactMap { Int($0) }
        guard shape.count == parts.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw fail("has a shape this lesson cannot read: \(shapeText)")
        }
        let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        let dataStart = headerStart + headerLength
        guard count < Int.max / 4, bytes.count - dataStart == 4 * count else {
            throw fail("should hold \(count) float32 numbers for shape \(shape) but has \(bytes.count - dataStart) bytes of data")
        }
        var scalars = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let o = dataStart + 4 * i
            let bits = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
            scalars[i] = Float(bitPattern: bits)
        }
        return Tensor(shape: shape, scalars: scalars)
    }

    /// The text after `'key':` up to (not including) `terminator`, trimmed.
    private static func value(of key: String, in header: String, until terminator: Character) -> String? {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\""),
              let colon = header[keyRange.upperBound...].firstIndex(of: ":") else { return nil }
        let rest = header[header.index(after: colon)...]
        guard let end = rest.firstIndex(of: terminator) else { return nil }
        let text = terminator == ")" ? rest[...end] : rest[..<end]
        return text.trimmingCharacters(in: .whitespaces)
    }

    /// A reader's name for a NumPy dtype string (`'<f8'` → "float64").
    private static func describe(_ dtype: String) -> String {
        let kinds: [Character: String] = ["f": "float", "i": "int", "u": "uint", "b": "bool", "c": "complex"]
        let body = dtype.drop { "<>=|".contains($0) }
        guard let kind = body.first, let name = kinds[kind], let size = Int(body.dropFirst()) else { return "'\(dtype)'" }
        if kind == "b" { return "bool" }
        let endian = dtype.first == ">" ? "big-endian " : ""
        return endian + name + "\(size * 8)"
    }
}
