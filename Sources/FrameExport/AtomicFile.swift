import Foundation

/// Writes files so that they are either complete or absent, never half-written.
///
/// A long run that is interrupted (Ctrl-C, a crash, a full disk) while writing `out.png` would
/// otherwise leave a truncated file that looks like a result. Instead, the bytes go to a hidden
/// temporary file in the same directory (`.out.png.tmp-<random>`), are flushed to disk, and
/// the temporary file is then renamed over `out.png`. On POSIX systems a rename within one file
/// system is atomic: readers see the old file or the new one, nothing in between. If anything
/// fails, the temporary file is deleted and the old `out.png`, if any, is left untouched.
///
/// The directory must already exist; see `ensureDirectory(_:)`. A replaced file gets fresh
/// permissions (0644 minus the umask), not those of the file it replaces.
///
/// ```swift
/// try AtomicFile.write("t,alpha_bar\n1,0.99915\n", to: "output/schedule.csv")
/// try AtomicFile.write(to: "output/losses.csv") { file in
///     for (step, loss) in losses.enumerated() { try file.write("\(step),\(loss)\n") }
/// }
/// ```
public enum AtomicFile {
    /// Writes `data` to `path` atomically.
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { try $0.write(data) }
    }

    /// Writes `text` as UTF-8 to `path` atomically.
    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    /// Streams content into `path` atomically: `body` writes pieces through the `Writer`, and the
    /// file appears only if `body` returns normally. If `body` throws, nothing changes at `path`
    /// and the error is passed on.
    public static func write(to path: String, _ body: (Writer) throws -> Void) throws {
        // The temporary file must be in the same directory: rename(2) is only atomic within one
        // file system, and a different directory (like /tmp) may be on another one.
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let suffix = String(UInt32.random(in: .min ... .max), radix: 16)
        let temporaryPath = (directory.isEmpty ? "" : directory + "/") + ".\(name).tmp-\(suffix)"

        // O_EXCL: fail rather than reuse a file someone else created with the same name.
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            let code = errno
            let shownDirectory = directory.isEmpty ? "." : directory
            let reason = code == ENOENT
                ? "the directory '\(shownDirectory)' does not exist (create it first, e.g. with ensureDirectory)"
                : "cannot create a file in '\(shownDirectory)': \(errorText(code))"
            throw FrameExportError.writeFailed(path: path, reason: reason)
        }
        let writer = Writer(descriptor: descriptor, path: path)
        do {
            try body(writer)
            try writer.finish()
            guard rename(temporaryPath, path) == 0 else {
                throw FrameExportError.writeFailed(path: path, reason: errorText(errno))
            }
        } catch {
            writer.abandon()
            unlink(temporaryPath)
            throw error
        }
    }

    /// The open temporary file handed to the `body` of `write(to:_:)`.
    public final class Writer {
        private var descriptor: Int32
        private let path: String

        fileprivate init(descriptor: Int32, path: String) {
            self.descriptor = descriptor
            self.path = path
        }

        /// Appends bytes to the file.
        public func write(_ data: Data) throws {
            precondition(descriptor >= 0, "the file of this Writer is already closed")
            try data.withUnsafeBytes { raw in
                var offset = 0
                // write(2) may write fewer bytes than asked, or be interrupted: loop until done.
                while offset < raw.count {
                    let written = systemWrite(descriptor, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw FrameExportError.writeFailed(path: path, reason: errorText(errno))
                    }
                    offset += written
                }
            }
        }

        /// Appends text as UTF-8.
        public func write(_ text: String) throws {
            try write(Data(text.utf8))
        }

        /// Flushes to the disk and closes; after this a crash cannot lose the content.
        fileprivate func finish() throws {
            let synced = fsync(descriptor) == 0
            let syncError = errno
            let closed = close(descriptor) == 0
            let closeError = errno
            descriptor = -1
            guard synced else { throw FrameExportError.writeFailed(path: path, reason: errorText(syncError)) }
            guard closed else { throw FrameExportError.writeFailed(path: path, reason: errorText(closeError)) }
        }

        /// Closes without caring about errors, on the way out of a failed write.
        fileprivate func abandon() {
            if descriptor >= 0 { close(descriptor) }
            descriptor = -1
        }
    }
}

/// Creates the directory at `path`, and any missing parents, unless it already exists.
///
/// Throws `FrameExportError.directoryCreationFailed` with the reason, e.g. when a file of that
/// name exists or permission is denied.
///
/// ```swift
/// try ensureDirectory("output/frames")
/// try image.writePNG(to: "output/frames/000.png")
/// ```
public func ensureDirectory(_ path: String) throws {
    func failure(_ reason: String) -> FrameExportError {
        .directoryCreationFailed(path: path, reason: reason)
    }
    guard !path.isEmpty else { throw failure("the path is empty") }
    // Create each component in turn, parents first, as `mkdir -p` does.
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
        prefix += component
        if mkdir(prefix, 0o755) != 0 {
            let code = errno
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: prefix, isDirectory: &isDirectory)
            if code == EEXIST && exists && !isDirectory.boolValue {
                throw failure("'\(prefix)' is a file, not a directory")
            }
            guard code == EEXIST else { throw failure(errorText(code)) }
        }
        prefix += "/"
    }
}

/// The C `write(2)` call; a free function so that the name does not clash with `Writer.write`.
private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}

/// The C library's text for an `errno` value, e.g. "Permission denied".
func errorText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
