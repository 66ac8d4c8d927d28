import Foundation

/// Writes a small file so that it is either complete or absent: the bytes go to a hidden file in
/// the same folder (`.name.<pid>.partial`), are flushed, and that file is renamed over the target,
/// which a rename within one file system does in one step. On failure the hidden file is removed.
///
/// Foundation's `Data.write(to:options: .atomic)` does the same through a temporary folder of
/// its own, which on Linux stays behind, empty, in /tmp after every write.
///
/// ```swift
/// try FileReplacement.write(Data("{}\n".utf8), to: folder.appendingPathComponent("config.json"))
/// ```
package enum FileReplacement {
    package static func write(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).partial")
        do {
            try data.write(to: temporary)
            let handle = try FileHandle(forWritingTo: temporary)
            try handle.synchronize()
            try handle.close()
            guard rename(temporary.path, url.path) == 0 else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey:
                    "cannot move the finished file into place: \(String(cString: strerror(errno)))"])
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}
