import Foundation

/// Reads a PyTorch checkpoint (`.ckpt`, `.pt`) without Python and without running any of it.
///
/// `torch.save` (PyTorch 1.6 and later, which wrote every Stable Diffusion 1.x release such as
/// `sd-v1-4.ckpt` and `v1-5-pruned-emaonly.ckpt`) writes a zip archive of stored entries:
/// ```
/// archive/data.pkl      the object graph as a pickle (a dict, usually {"state_dict": {...}, ...})
/// archive/data/0        the bytes of storage "0", then "1", "2", ...
/// archive/byteorder     "little" (missing in old files, which are little-endian too)
/// archive/version       the format version
/// ```
/// The pickle runs on `RestrictedUnpickler`, which only describes tensors; each tensor becomes a
/// `TensorRecord` pointing into the memory-mapped file, exactly like a safetensors tensor, so
/// nothing is copied. The older pre-1.6 format (a bare pickle stream followed by the storages)
/// is recognised and refused with a message.
public enum TorchCheckpoint {
    /// The tensors of a checkpoint's state dict, by their original names, and the names of the
    /// other entries that were skipped (`global_step`, `epoch`, ...).
    public static func read(path: String) throws -> (tensors: [String: TensorRecord], otherEntries: [String]) {
        let file = try MappedFile(path: path)
        if file.bytes.count >= 2, file.bytes[0] == 0x80, file.bytes[1] <= 5 {
            throw CheckpointError.unreadable(path, "it is in PyTorch's legacy (pre-1.6) format, which is not supported; use the .safetensors version of the model")
        }
        guard file.bytes.count >= 4, file.bytes.loadUnaligned(as: UInt32.self) == 0x0403_4b50 else {
            throw CheckpointError.corrupt(path, "it does not start like a zip archive, which PyTorch checkpoints are")
        }
        let archive = try ZipArchive(file)

        // The archive's folder is whatever holds data.pkl ("archive/" in torch.save's files).
        let pickles = archive.entries.keys.filter { $0.hasSuffix("data.pkl") && $0.split(separator: "/").count == 2 }
        guard pickles.count == 1, let pickleName = pickles.first else {
            throw CheckpointError.corrupt(path, "the zip archive has \(pickles.count) '<folder>/data.pkl' entries; a PyTorch checkpoint has exactly one")
        }
        let folder = String(pickleName.dropLast("data.pkl".count))
        if let byteOrder = archive.entries[folder + "byteorder"], archive.data(byteOrder) != Data("little".utf8) {
            throw CheckpointError.corrupt(path, "it was saved on a big-endian machine; only little-endian checkpoints are supported")
        }

        let root = try RestrictedUnpickler(data: archive.data(archive.entries[pickleName]!), path: path).load()

        // Lightning checkpoints nest the weights as {"state_dict": {...}, "global_step": ..., ...};
        // a plain `torch.save(model.state_dict())` does not.
        guard case .dict(var dictionary) = root else {
            throw CheckpointError.corrupt(path, "the pickle holds no dictionary of tensors")
        }
        var other: [String] = []
        if let index = dictionary.keys.firstIndex(where: { if case .string("state_dict") = $0 { return true } else { return false } }),
           case .dict(let nested) = dictionary.values[index] {
            for key in dictionary.keys { if case .string(let name) = key, name != "state_dict" { other.append(name) } }
            dictionary = nested
        }

        var tensors: [String: TensorRecord] = [:]
        for (key, value) in zip(dictionary.keys, dictionary.values) {
            guard case .string(let name) = key else { continue }
            guard case .tensor(let storage, let offset, let shape, let strides) = value,
                  case .storage(let type, let storageKey, let storageCount) = storage else {
                other.append(name)
                continue
            }
            guard let entry = archive.entries[folder + "data/" + storageKey] else {
                throw CheckpointError.corrupt(path, "tensor '\(name)' uses storage '\(storageKey)', which the archive lacks (truncated?)")
            }
            guard storageCount <= entry.byteRange.count / type.byteCount else {
                throw CheckpointError.corrupt(path, "storage '\(storageKey)' should hold \(storageCount) \(type.rawValue) values but its entry has only \(entry.byteRange.count) bytes")
            }
            guard shape.allSatisfy({ $0 >= 0 }), offset >= 0 else {
                throw CheckpointError.corrupt(path, "tensor '\(name)' has shape \(shape) at offset \(offset)")
            }
            // The sizes come from the file: multiply them without overflowing, so that a lying file
            // gets a message rather than a crash.
            var count = 1
            for size in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: size)
                guard !overflow else { throw CheckpointError.corrupt(path, "tensor '\(name)' has an impossible shape \(shape)") }
                count = product
            }
            guard offset <= storageCount, count <= storageCount - offset else {
                throw CheckpointError.corrupt(path, "tensor '\(name)' of shape \(shape) at element \(offset) does not fit in its storage of \(storageCount) elements")
            }
            // Row-major strides: the last dimension varies fastest. Dimensions of size 1 may carry
            // any stride, since they are never stepped along.
            var expected = 1
            for axis in shape.indices.reversed() {
                if shape[axis] != 1, strides[axis] != expected, count > 0 {
                    throw CheckpointError.corrupt(path, "tensor '\(name)' of shape \(shape) has strides \(strides), not contiguous (row-major); save it with .contiguous()")
                }
                expected = expected &* shape[axis]
            }
            let begin = entry.byteRange.lowerBound + offset * type.byteCount
            tensors[name] = TensorRecord(name: name, type: type, shape: shape,
                                         byteRange: begin..<(begin + count * type.byteCount), file: file)
        }
        return (tensors, other)
    }
}
