import Foundation
import TensorCore

/// Element types a checkpoint may store. Weights are widened to Float32 when they are used.
public enum StorageType: String, Sendable {
    case float32 = "F32", float16 = "F16", bfloat16 = "BF16", int64 = "I64"

    public var byteCount: Int {
        switch self {
        case .float32: return 4
        case .float16, .bfloat16: return 2
        case .int64: return 8
        }
    }
}

/// Where one tensor's bytes are in a memory-mapped checkpoint, and what they mean.
public struct TensorRecord: Sendable {
    public let name: String
    public let type: StorageType
    public let shape: [Int]
    /// Byte range inside `MappedFile`.
    public let byteRange: Range<Int>
    public let file: MappedFile

    public var elementCount: Int { shape.reduce(1, *) }

    /// Reads the values as Float32 (int64 values are converted too, e.g. `position_ids`).
    public func floats() -> [Float] { floats(elements: 0..<elementCount) }

    /// Reads a range of elements (in storage order) as Float32, widening on all cores.
    public func floats(elements range: Range<Int>) -> [Float] {
        [Float](unsafeUninitializedCapacity: range.count) { out, initialized in
            write(elements: range, into: out.baseAddress!)
            initialized = range.count
        }
    }

    /// All the values as a Float32 tensor of `shape` (the stored shape or a reshape of it),
    /// written straight into the tensor's fresh buffer.
    public func tensor(shape: [Int]) -> Tensor {
        precondition(shape.reduce(1, *) == elementCount, "\(name): cannot read \(self.shape) as \(shape)")
        return Tensor(shape: shape, unsafeUninitialized: { write(elements: 0..<elementCount, into: $0.baseAddress!) })
    }

    /// Widens (or copies) elements `range`, in storage order, into `destination`, on all cores.
    private func write(elements range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        let base = file.bytes.baseAddress! + byteRange.lowerBound + range.lowerBound * type.byteCount
        let target = SendablePointer(destination)
        let source = SendableRawPointer(base)
        let type = self.type
        Parallel.forEachChunk(of: range.count, minimumChunk: 1 << 18) { chunk in
            let from = source.pointer + chunk.lowerBound * type.byteCount
            let to = target.pointer + chunk.lowerBound
            switch type {
            case .float32:
                // safetensors stores little-endian; every platform we build for is little-endian.
                memcpy(to, from, chunk.count * 4)
            case .float16:
                widenFloat16(from, count: chunk.count, into: to)
            case .bfloat16:
                widenBFloat16(from, count: chunk.count, into: to)
            case .int64:
                for i in 0..<chunk.count { to[i] = Float(from.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
            }
        }
    }

    /// All the values as a Float32 tensor of the stored shape.
    public func tensor() -> Tensor { tensor(shape: shape) }

    /// `tensor()`, then the file's pages that held it are given back (`MappedFile.releasePages`):
    /// for weights copied into memory once, so that a float32 checkpoint does not sit in memory
    /// twice (once mapped, once copied).
    public func copiedOut() -> Tensor {
        defer { file.releasePages(byteRange) }
        return tensor()
    }

    /// The values as they are stored, without a copy, if they are 16-bit floats (the mapped file
    /// is kept alive as long as the `HalfTensor` is).
    public var halfTensor: HalfTensor? {
        let format: HalfTensor.Format
        switch type {
        case .float16: format = .float16
        case .bfloat16: format = .bfloat16
        case .float32, .int64: return nil
        }
        return HalfTensor(shape: shape, format: format, bytes: file.bytes.baseAddress! + byteRange.lowerBound, owner: file)
    }
}

/// Pointers that the widening loop hands to several threads; each thread touches its own range.
struct SendablePointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}

struct SendableRawPointer: @unchecked Sendable {
    let pointer: UnsafeRawPointer
    init(_ pointer: UnsafeRawPointer) { self.pointer = pointer }
}

/// A read-only memory map of a whole file: the operating system pages bytes in as they are read,
/// so opening a 4 GB checkpoint costs nothing until a tensor is used.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer

    public init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError.missing(path)
        }
        guard !isDirectory.boolValue else { throw CheckpointError.notAFile(path) }
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw CheckpointError.unreadable(path, String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw CheckpointError.unreadable(path, String(cString: strerror(errno))) }
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw CheckpointError.unreadable(path, String(cString: strerror(errno)))
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// Gives back the memory of the pages holding `range`, keeping the mapping: the pages leave
    /// this process's resident memory (they stay in the operating system's file cache) and are
    /// read in again, unchanged, if the bytes are used again. The mapping is read-only, so nothing
    /// is lost. Ranges are widened to whole pages; a neighbour's page only costs a re-read.
    public func releasePages(_ range: Range<Int>) {
        guard let base = bytes.baseAddress, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        let end = min(bytes.count, (range.upperBound + page - 1) / page * page)
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }
}

/// Reads the safetensors format: an 8-byte little-endian header length, a JSON header mapping
/// each tensor name to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the end
/// of the header), then the raw bytes. Nothing in the file is executed: it is only numbers.
///
/// Every claim the header makes is checked against the file before any byte is read, so a
/// truncated file or a header that lies about offsets is reported by name instead of crashing.
public enum SafeTensors {
    public static func read(path: String) throws -> [String: TensorRecord] {
        try readWithMetadata(path: path).records
    }

    /// The tensors and the header's `__metadata__` (free-form strings such as `"format": "pt"`).
    public static func readWithMetadata(path: String) throws -> (records: [String: TensorRecord], metadata: [String: String]) {
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        guard bytes.count >= 8 else { throw CheckpointError.corrupt(path, "file is \(bytes.count) bytes, too short for a safetensors header") }
        let headerLength = Int(clamping: bytes.loadUnaligned(as: UInt64.self).littleEndian)
        guard headerLength > 1, headerLength <= bytes.count - 8 else {
            throw CheckpointError.corrupt(path, "header claims \(headerLength) bytes but the file has \(bytes.count - 8) after the length field (truncated, or not a safetensors file)")
        }
        let headerData = Data(bytes[8..<(8 + headerLength)])
        guard let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw CheckpointError.corrupt(path, "the header is not a JSON object (not a safetensors file?)")
        }
        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var records: [String: TensorRecord] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any],
                  let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int],
                  let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw CheckpointError.corrupt(path, "tensor '\(name)' has a malformed header entry")
            }
            guard let type = StorageType(rawValue: dtype) else {
                throw CheckpointError.unsupportedType(path, name: name, type: dtype)
            }
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw CheckpointError.corrupt(path, "tensor '\(name)' has a negative dimension in shape \(shape)")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end <= dataLength else {
                throw CheckpointError.corrupt(path, "tensor '\(name)' claims bytes \(begin)..<\(end) but only \(dataLength) data bytes exist (truncated file or lying header)")
            }
            // The product is checked for overflow: a lying header may claim absurd dimensions.
            let expected = shape.reduce(Optional(type.byteCount)) { product, dimension in
                product.flatMap { let (p, overflow) = $0.multipliedReportingOverflow(by: dimension); return overflow ? nil : p }
            }
            guard let expected, end - begin == expected else {
                throw CheckpointError.corrupt(path, "tensor '\(name)' of shape \(shape) and type \(dtype) needs \(expected.map(String.init) ?? "more than 2⁶³") bytes, header gives \(end - begin)")
            }
            records[name] = TensorRecord(name: name, type: type, shape: shape,
                                         byteRange: (dataStart + begin)..<(dataStart + end), file: file)
        }
        let metadata = (header["__metadata__"] as? [String: Any])?.compactMapValues { $0 as? String } ?? [:]
        return (records, metadata)
    }
}
