import Classroom
import Foundation
import Hummingbird
import HummingbirdTesting
import LessonKit
import NIOCore

/// The shipped shapes model and servers around it, for the classroom's tests.
enum ClassroomTestSupport {
    static let projectFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let shapesModel = LessonModel(path: projectFolder.appendingPathComponent("Examples/tiny-shapes").path,
                                         isShapesModel: true)
    /// Loaded once: the tests share it, as a server's pages do (the queue keeps runs apart).
    static let model: ClassroomModel = try! ClassroomModel(shapesModel)

    /// A server on a free loopback port.
    static func application(queue: GenerationQueue = GenerationQueue(), limits: ClassroomLimits = ClassroomLimits())
        -> some ApplicationProtocol {
        ClassroomServer(model: model, queue: queue, limits: limits).application(host: "127.0.0.1", port: 0)
    }

    /// The folder of the built executables (the test bundle sits next to them).
    static var productsFolder: URL {
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("sd").path), folder.pathComponents.count > 1 {
            folder.deleteLastPathComponent()
        }
        return folder
    }

    /// Runs the built `sd` with `arguments`; returns its exit status and what it wrote to stderr.
    @discardableResult
    static func sd(_ arguments: [String]) throws -> (status: Int32, errors: String) {
        let process = Process()
        process.executableURL = productsFolder.appendingPathComponent("sd")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter { $0.key != "SD_CHECKPOINT" }
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        // A command that should have failed but serves instead would never end: stop it after a minute.
        let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        defer { watchdog.cancel() }
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
    }

    static func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
}
