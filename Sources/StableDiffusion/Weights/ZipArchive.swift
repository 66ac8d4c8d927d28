import Foundation

/// The table of contents of a zip archive, read from a memory-mapped file.
///
/// `torch.save` (PyTorch 1.6 and later) writes a zip archive whose entries are *stored*, not
/// compressed, so a tensor's bytes sit unchanged inside the file and can be used in place. This
/// reader understands exactly that: the central directory at the end of the file, stored entries,
/// and the zip64 extensions that archives over 4 GB (such as `sd-v1-4.ckpt`) need. A compressed
/// entry is reported, never inflated.
///
/// Layout, end of file first (all numbers little-endian):
/// ```
/// [local header 30 B + name + extra][entry bytes]   ... one per entry
/// [central directory: one 46 B record + name + extra + comment per entry]
/// [zip64 end record 56 B][zip64 locator 20 B]          (only in zip64 archives)
/// [end of central directory 22 B + comment]
/// ```
public struct ZipArchive {
    public struct Entry: Sendable {
        public let name: String
        /// Where the entry's bytes are, as offsets into the whole file.
        public let byteRange: Range<Int>
    }

    public let file: MappedFile
    /// Entries by name.
    public let entries: [String: Entry]

    /// Reads the central directory of `file`; `path` names the file in messages.
    public init(_ file: MappedFile) throws {
        self.file = file
        let reader = ByteReader(bytes: file.bytes, path: file.path)
        let path = file.path

        // The end-of-central-directory record is 22 bytes plus a comment of up to 65535 bytes, so
        // search backwards for its signature over that window.
        let size = file.bytes.count
        guard size >= 22 else { throw CheckpointError.corrupt(path, "file is \(size) bytes, too short for a zip archive") }
        var endRecord: Int?
        var position = size - 22
        while position >= max(0, size - 22 - 65535) {
            if reader.u32(position) == 0x0605_4b50 { endRecord = position; break }
            position -= 1
        }
        guard let end = endRecord else {
            throw CheckpointError.corrupt(path, "no zip directory at the end of the file (truncated download?)")
        }
        var entryCount = Int(reader.u16(end + 10))
        var directorySize = Int(reader.u32(end + 12))
        var directoryOffset = Int(reader.u32(end + 16))

        // Zip64: any of the three fields saturated means the real values are in the zip64 end
        // record, which the 20-byte locator just before the end record points to.
        if entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            let locator = end - 20
            guard locator >= 0, reader.u32(locator) == 0x0706_4b50 else {
                throw CheckpointError.corrupt(path, "a zip64 archive without its zip64 locator")
            }
            let record = try reader.offset(reader.u64(locator + 8), within: size - 56, what: "zip64 end record")
            guard reader.u32(record) == 0x0606_4b50 else {
                throw CheckpointError.corrupt(path, "the zip64 locator points at something that is not a zip64 end record")
            }
            entryCount = try reader.offset(reader.u64(record + 32), within: size, what: "entry count")
            directorySize = try reader.offset(reader.u64(record + 40), within: size, what: "directory size")
            directoryOffset = try reader.offset(reader.u64(record + 48), within: size, what: "directory offset")
        }
        guard directoryOffset + directorySize <= end else {
            throw CheckpointError.corrupt(path, "the zip directory claims bytes \(directoryOffset)..<\(directoryOffset + directorySize) but the file has \(end) before its end record (truncated?)")
        }

        var entries: [String: Entry] = [:]
        var cursor = directoryOffset
        for _ in 0..<entryCount {
            guard cursor + 46 <= directoryOffset + directorySize, reader.u32(cursor) == 0x0201_4b50 else {
                throw CheckpointError.corrupt(path, "damaged zip directory at byte \(cursor)")
            }
            let method = reader.u16(cursor + 10)
            var compressedSize = UInt64(reader.u32(cursor + 20))
            var uncompressedSize = UInt64(reader.u32(cursor + 24))
            let nameLength = Int(reader.u16(cursor + 28))
            let extraLength = Int(reader.u16(cursor + 30))
            let commentLength = Int(reader.u16(cursor + 32))
            var localOffset = UInt64(reader.u32(cursor + 42))
            let nameStart = cursor + 46
            guard nameStart + nameLength + extraLength + commentLength <= directoryOffset + directorySize else {
                throw CheckpointError.corrupt(path, "damaged zip directory at byte \(cursor)")
            }
            let name = String(decoding: reader.bytes[nameStart..<(nameStart + nameLength)], as: UTF8.self)

            // Zip64 extra field (id 1): 8-byte values for exactly those fields saturated above,
            // in the order uncompressed size, compressed size, local header offset.
            var extra = nameStart + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = reader.u16(extra), length = Int(reader.u16(extra + 2))
                var field = extra + 4
                if id == 0x0001 {
                    if uncompressedSize == 0xFFFF_FFFF, field + 8 <= extraEnd { uncompressedSize = reader.u64(field); field += 8 }
                    if compressedSize == 0xFFFF_FFFF, field + 8 <= extraEnd { compressedSize = reader.u64(field); field += 8 }
                    if localOffset == 0xFFFF_FFFF, field + 8 <= extraEnd { localOffset = reader.u64(field) }
                }
                extra += 4 + length
            }
            guard method == 0 else {
                throw CheckpointError.corrupt(path, "zip entry '\(name)' is compressed (method \(method)); PyTorch checkpoints store their entries uncompressed")
            }
            guard compressedSize == uncompressedSize else {
                throw CheckpointError.corrupt(path, "zip entry '\(name)' is stored but its two sizes differ")
            }

            // The entry's bytes follow its local header, whose name and extra field may differ in
            // length from the directory's copy (PyTorch pads the extra field to align tensors).
            let local = try reader.offset(localOffset, within: size - 30, what: "local header of '\(name)'")
            guard reader.u32(local) == 0x0403_4b50 else {
                throw CheckpointError.corrupt(path, "zip entry '\(name)' points at byte \(local), which is not a local header")
            }
            let dataStart = local + 30 + Int(reader.u16(local + 26)) + Int(reader.u16(local + 28))
            let length = try reader.offset(uncompressedSize, within: size, what: "size of '\(name)'")
            guard dataStart + length <= size else {
                throw CheckpointError.corrupt(path, "zip entry '\(name)' needs bytes \(dataStart)..<\(dataStart + length) but the file has \(size) (truncated?)")
            }
            entries[name] = Entry(name: name, byteRange: dataStart..<(dataStart + length))
            cursor = extraEnd + commentLength
        }
        self.entries = entries
    }

    /// The bytes of one entry (for the small ones: the pickle, `byteorder`, `version`).
    public func data(_ entry: Entry) -> Data {
        Data(file.bytes[entry.byteRange])
    }
}

/// Little-endian reads at byte offsets that the caller has bounds-checked.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String

    func u16(_ offset: Int) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
    func u32(_ offset: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    func u64(_ offset: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }

    /// A 64-bit value from the file used as an offset or size: it must lie in `0...limit`.
    func offset(_ value: UInt64, within limit: Int, what: String) throws -> Int {
        guard limit >= 0, value <= UInt64(limit) else {
            throw CheckpointError.corrupt(path, "the zip archive's \(what) (\(value)) lies beyond the file's \(bytes.count) bytes (truncated?)")
        }
        return Int(value)
    }
}
