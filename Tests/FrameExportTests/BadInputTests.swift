import Foundation
import Testing
import FrameExport

/// Every kind of bad input must give a specific error whose message names the file.
struct BadInputTests {
    /// Reads `path`, expecting failure; returns the error for closer checks.
    private func readError(_ path: String) -> FrameExportError? {
        do {
            _ = try RGBImage(contentsOfFile: path)
            return nil
        } catch {
            return error as? FrameExportError
        }
    }

    private func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test func missingFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/nowhere.png"
        let error = try #require(readError(path))
        #expect(error == .fileNotFound(path: path))
        #expect(error.description == "cannot read '\(path)': no such file")
    }

    @Test func directoryInsteadOfFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let error = try #require(readError(directory))
        #expect(error == .unreadableFile(path: directory, reason: "it is a directory"))
    }

    @Test func emptyFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/empty.png"
        try write([], to: path)
        let error = try #require(readError(path))
        #expect(error == .emptyFile(path: path))
        #expect(error.description.contains(path) && error.description.contains("0 bytes"))
    }

    @Test func textFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/notes.png"  // the extension lies; the content decides
        try write(Array("prompt: a red fox\nseed: 42\n".utf8), to: path)
        let error = try #require(readError(path))
        #expect(error == .unsupportedFormat(path: path, detected: "a text file, not an image"))
        #expect(error.description == "'\(path)' is a text file, not an image; only PNG and JPEG images can be read")
    }

    @Test func gifGivenAsInput() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/animation.png"
        var gif = AnimatedGIF()
        gif.addFrame(RGBImage(width: 4, height: 4, color: .white))
        try gif.write(to: path)
        let error = try #require(readError(path))
        #expect(error == .unsupportedFormat(path: path, detected: "a GIF image"))
        #expect(error.description.contains(path) && error.description.contains("only PNG and JPEG"))
    }

    @Test func bmpGivenAsInput() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/picture.bmp"
        try write(Array("BM".utf8) + [UInt8](repeating: 0, count: 60), to: path)
        #expect(readError(path) == .unsupportedFormat(path: path, detected: "a BMP image"))
    }

    @Test func truncatedPNG() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/cut.png"
        let bytes = [UInt8](try testPattern(width: 64, height: 64).pngData())
        try write(Array(bytes.prefix(bytes.count / 2)), to: path)
        let error = try #require(readError(path))
        guard case .corruptImage(let errorPath, let format, let reason) = error else {
            Issue.record("expected corruptImage, got \(error)")
            return
        }
        #expect(errorPath == path && format == "PNG" && !reason.isEmpty)
        #expect(error.description.hasPrefix("'\(path)' is a corrupt or truncated PNG file: "))
    }

    @Test func damagedPNGData() throws {
        // Flip one byte inside the compressed pixel data: libpng's CRC check must catch it.
        var bytes = [UInt8](try testPattern(width: 32, height: 32).pngData())
        bytes[bytes.count - 30] ^= 0xFF  // 12 bytes of IEND, 4 of CRC, then IDAT data
        let error = #expect(throws: FrameExportError.self) {
            try RGBImage(decoding: Data(bytes), name: "flipped.png")
        }
        guard case .corruptImage(path: "flipped.png", format: "PNG", _)? = error else {
            Issue.record("expected corruptImage, got \(String(describing: error))")
            return
        }
    }

    @Test func zeroSizePNG() throws {
        // A structurally valid PNG whose header says 0 x 1 pixels.
        let png = PNGFixtures.png(width: 0, height: 1, bitDepth: 8, colorType: .gray, rows: [[]])
        #expect(throws: FrameExportError.zeroSizeImage(path: "zero.png")) {
            try RGBImage(decoding: Data(png), name: "zero.png")
        }
    }

    @Test func truncatedJPEG() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/cut.jpg"
        let bytes = [UInt8](try smoothPicture(width: 64, height: 64).jpegData())
        try write(Array(bytes.prefix(bytes.count / 2)), to: path)
        let error = try #require(readError(path))
        #expect(error == .corruptImage(path: path, format: "JPEG",
                                       reason: "the image data ends without an end-of-image marker"))
    }

    @Test func corruptJPEGReportsLibjpegsReason() throws {
        // Break the first Huffman table definition (marker FF C4): its class/index byte becomes 0x3F.
        var bytes = [UInt8](try smoothPicture(width: 16, height: 16).jpegData())
        let marker = try #require((0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC4 })
        bytes[marker + 4] = 0x3F
        let error = #expect(throws: FrameExportError.self) {
            try RGBImage(decoding: Data(bytes), name: "bad-table.jpg")
        }
        // gd's message (normally printed to stderr) ends up in the error instead.
        #expect(error?.description.hasPrefix("'bad-table.jpg' is a corrupt or truncated JPEG file: ") == true)
        #expect(error?.description.contains("DHT") == true, "\(String(describing: error))")
    }

    @Test func jpegCutInsideItsHeaders() throws {
        let bytes = [UInt8](try smoothPicture(width: 16, height: 16).jpegData())
        let error = #expect(throws: FrameExportError.self) {
            try RGBImage(decoding: Data(bytes.prefix(30)), name: "header.jpg")
        }
        #expect(error?.description.contains("'header.jpg' is a corrupt or truncated JPEG file") == true)
    }
}
