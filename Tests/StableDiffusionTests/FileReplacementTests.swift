import Foundation
import Testing
import StableDiffusion

@Suite("Small files written whole or not at all")
struct FileReplacementTests {
    @Test("the file appears with its bytes, replaces an older one, and nothing else is left in the folder")
    func writes() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("replace-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("config.json")
        try FileReplacement.write(Data("{\"a\": 1}\n".utf8), to: url)
        try FileReplacement.write(Data("{\"a\": 2}\n".utf8), to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == "{\"a\": 2}\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["config.json"])
    }

    @Test("a folder that does not exist: an error, and no file anywhere")
    func missingFolder() {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("missing-\(UUID().uuidString)")
        #expect(throws: (any Error).self) {
            try FileReplacement.write(Data("x".utf8), to: folder.appendingPathComponent("config.json"))
        }
        #expect(!FileManager.default.fileExists(atPath: folder.path))
    }
}
