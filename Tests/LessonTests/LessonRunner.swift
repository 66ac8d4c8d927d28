import Foundation

/// Runs a lesson executable built alongside the tests and captures what it prints.
struct LessonRun {
    var status: Int32
    var output: String
    var errors: String
    /// Whether the process was killed by a signal (a trap, a crash) instead of exiting.
    var signalled = false
}

enum LessonRunner {
    /// The folder holding the built products: the test binary sits next to them.
    static var productsFolder: URL {
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        // On macOS the tests run inside a .xctest bundle a few levels down.
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("forward-noising").path),
              folder.pathComponents.count > 1 {
            folder.deleteLastPathComponent()
        }
        return folder
    }

    /// Runs `lesson` with `arguments`, in `directory`, with `environment` added to this process's.
    static func run(_ lesson: String, _ arguments: [String], in directory: URL? = nil,
                    environment: [String: String] = [:]) throws -> LessonRun {
        let process = Process()
        process.executableURL = productsFolder.appendingPathComponent(lesson)
        process.arguments = arguments
        // Tests decide the checkpoint, the kernels and the instruction set themselves; a choice made in the user's shell
        // must not leak in. Unless a test says otherwise, lessons keep to their built-in material
        // (SD_CHECKPOINT=none); `shippedModel` lets them find the shapes model as a student's run does.
        let isLesson = !lesson.hasPrefix("sd")
        process.environment = ProcessInfo.processInfo.environment
            .filter { $0.key != "SD_CHECKPOINT" && $0.key != "SD_KERNELS" && $0.key != "SD_CPU" }
            .merging(isLesson ? ["SD_CHECKPOINT": "none"] : [:]) { $1 }
            .merging(environment) { $1 }
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return LessonRun(status: process.terminationStatus,
                         output: String(decoding: outData, as: UTF8.self),
                         errors: String(decoding: errData, as: UTF8.self),
                         signalled: process.terminationReason == .uncaughtSignal)
    }

    /// The environment that lets a lesson find the shipped shapes model, as it does by default.
    static let shippedModel = ["SD_CHECKPOINT": ""]

    /// A fresh empty folder under the system's temporary directory.
    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lesson-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func files(in folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }
}

/// One bad command line and the words its error message must contain.
struct BadInput: Sendable, CustomStringConvertible {
    var arguments: [String]
    var message: String
    var description: String { arguments.joined(separator: " ") }
}
