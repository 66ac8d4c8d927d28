import Foundation
import Testing
import FrameExport

struct AtomicFileTests {
    private struct Interrupted: Error {}

    private func contents(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }

    @Test func writesAndReplaces() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/schedule.csv"
        try AtomicFile.write("t,alpha_bar\n0,0.99915\n", to: path)
        #expect(try contents(path) == "t,alpha_bar\n0,0.99915\n")
        try AtomicFile.write(Data("replaced".utf8), to: path)
        #expect(try contents(path) == "replaced")
        #expect(try directoryListing(directory) == ["schedule.csv"])  // no temporary files left
    }

    @Test func streamsPieces() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/losses.csv"
        try AtomicFile.write(to: path) { file in
            try file.write("step,loss\n")
            for step in 0..<3 { try file.write("\(step),\(Double(step) / 2)\n") }
        }
        #expect(try contents(path) == "step,loss\n0,0.0\n1,0.5\n2,1.0\n")
    }

    @Test func failureMidWriteKeepsTheOldFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/result.txt"
        try AtomicFile.write("old result", to: path)

        #expect(throws: Interrupted.self) {
            try AtomicFile.write(to: path) { file in
                try file.write("half of a new res")
                throw Interrupted()
            }
        }
        #expect(try contents(path) == "old result")
        #expect(try directoryListing(directory) == ["result.txt"])
    }

    @Test func failedRenameRemovesTheTemporaryFile() throws {
        // The target is a non-empty directory: the data is written, but rename(2) must fail.
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let target = directory + "/taken"
        try ensureDirectory(target + "/inside")
        let error = #expect(throws: FrameExportError.self) { try AtomicFile.write("data", to: target) }
        #expect(error?.description.hasPrefix("cannot write '\(target)': ") == true)
        #expect(try directoryListing(directory) == ["taken"])
        #expect(try directoryListing(target) == ["inside"])
    }

    @Test func failedPNGWriteLeavesNothing() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/image.png"
        let original = testPattern(width: 4, height: 4)
        try original.writePNG(to: path)
        // An invalid text key makes the encoder throw before anything is written.
        #expect(throws: FrameExportError.self) {
            try RGBImage(width: 4, height: 4).writePNG(to: path, text: [PNGTextEntry(key: "", value: "x")])
        }
        #expect(try RGBImage(contentsOfFile: path) == original)
        #expect(try directoryListing(directory) == ["image.png"])
    }

    @Test func missingDirectoryIsExplained() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/not-yet/out.png"
        let error = #expect(throws: FrameExportError.self) { try RGBImage(width: 1, height: 1).writePNG(to: path) }
        #expect(error == .writeFailed(path: path, reason: "the directory '\(directory)/not-yet' does not exist (create it first, e.g. with ensureDirectory)"))
    }

    @Test func ensureDirectoryCreatesParents() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let nested = directory + "/a/b/c"
        try ensureDirectory(nested)
        try ensureDirectory(nested)  // already there: fine
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: nested, isDirectory: &isDirectory) && isDirectory.boolValue)
        try AtomicFile.write("x", to: nested + "/file.txt")
        #expect(try contents(nested + "/file.txt") == "x")
    }

    @Test func ensureDirectoryRefusesAFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let file = directory + "/plain.txt"
        try AtomicFile.write("x", to: file)

        #expect(throws: FrameExportError.directoryCreationFailed(path: file, reason: "'\(file)' is a file, not a directory")) {
            try ensureDirectory(file)
        }
        // A path that goes *through* the file fails too, with the system's reason.
        let error = #expect(throws: FrameExportError.self) { try ensureDirectory(file + "/sub") }
        #expect(error?.description.hasPrefix("cannot create directory '\(file)/sub': ") == true)
    }
}
