import Foundation
import TensorCore

/// Writes tensors as a safetensors file, the format `SafeTensors.read` reads:
/// ```
/// [8-byte little-endian header length][JSON header, padded with spaces to a multiple of 8][data]
/// header: {"name": {"dtype": "F16", "shape": [320, 4, 3, 3], "data_offsets": [begin, end]}, ...}
/// ```
/// Tensors are written in name order, their bytes copied unchanged from wherever their records
/// point (a `.ckpt` or another safetensors file), so converting never rounds a value.
///
/// The file appears atomically: everything goes to a hidden temporary file in the same folder,
/// which is renamed over `path` only when complete, and removed if anything fails. A crash or a
/// full disk never leaves a half-written model behind.
public enum SafeTensorsWriter {
    /// Copies checkpoint tensors, as stored, into a new file (`sd convert`).
    public static func write(_ tensors: [String: TensorRecord], to path: String, metadata: [String: String] = [:]) throws {
        try write(entries: tensors.mapValues { record in
            Entry(dtype: record.type.rawValue, shape: record.shape, byteCount: record.byteRange.count) { handle in
                // Large tensors in pieces of 64 MB, so memory stays flat while the file grows.
                var start = record.byteRange.lowerBound
                while start < record.byteRange.upperBound {
                    let end = min(start + (64 << 20), record.byteRange.upperBound)
                    try handle.write(contentsOf: Data(record.file.bytes[start..<end]))
                    start = end
                }
            }
        }, to: path, metadata: metadata)
    }

    /// Writes tensors from memory (trained weights), as float32 or rounded to float16.
    public static func write(_ tensors: [String: Tensor], precision: HalfTensor.Format? = nil, to path: String,
                             metadata: [String: String] = [:]) throws {
        precondition(precision != .bfloat16, "bfloat16 output is not supported")
        try write(entries: tensors.mapValues { tensor in
            let half = precision == .float16
            return Entry(dtype: half ? "F16" : "F32", shape: tensor.shape, byteCount: tensor.count * (half ? 2 : 4)) { handle in
                if half {
                    try handle.write(contentsOf: tensor.scalars.map { Float16($0).bitPattern.littleEndian }.withUnsafeBytes { Data($0) })
                } else {
                    try handle.write(contentsOf: tensor.scalars.withUnsafeBytes { Data($0) })
                }
            }
        }, to: path, metadata: metadata)
    }

    /// One tensor to write: its header entry and how to write its bytes.
    struct Entry {
        var dtype: String
        var shape: [Int]
        var byteCount: Int
        var writeBytes: (FileHandle) throws -> Void

        init(dtype: String, shape: [Int], byteCount: Int, _ writeBytes: @escaping (FileHandle) throws -> Void) {
            self.dtype = dtype
            self.shape = shape
            self.byteCount = byteCount
            self.writeBytes = writeBytes
        }
    }

    static func write(entries: [String: Entry], to path: String, metadata: [String: String]) throws {
        var header: [String: Any] = [:]
        var offset = 0
        let names = entries.keys.sorted()
        for name in names {
            let entry = entries[name]!
            header[name] = ["dtype": entry.dtype, "shape": entry.shape,
                            "data_offsets": [offset, offset + entry.byteCount]] as [String: Any]
            offset += entry.byteCount
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Padding keeps the data 8-byte aligned; the format allows trailing spaces in the header.
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - (8 + json.count) % 8) % 8))

        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).partial").path
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
              let handle = FileHandle(forWritingAtPath: temporary) else {
            throw CheckpointError.unwritable(path, "cannot create a file in \(url.deletingLastPathComponent().path)")
        }
        do {
            try handle.write(contentsOf: withUnsafeBytes(of: UInt64(json.count).littleEndian) { Data($0) })
            try handle.write(contentsOf: json)
            for name in names { try entries[name]!.writeBytes(handle) }
            try handle.synchronize()
            try handle.close()
            if rename(temporary, path) != 0 {
                throw CheckpointError.unwritable(path, "cannot move the finished file into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporary)
            if let error = error as? CheckpointError { throw error }
            throw CheckpointError.unwritable(path, "writing failed: \(error.localizedDescription)")
        }
    }
}
