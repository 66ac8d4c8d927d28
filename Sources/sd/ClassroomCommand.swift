import ArgumentParser
import Classroom
import Foundation
import Hummingbird
import LessonKit

/// `sd classroom`: a web page for the class. Everyone on it types prompts and watches the picture
/// come out of the noise step by step, with the words' attention maps; runs take turns.
///
/// ```
/// sd classroom                                  # the shipped shapes model, http://127.0.0.1:8080
/// sd classroom --checkpoint v1-5-pruned-emaonly.safetensors --port 9000
/// sd classroom --host 0.0.0.0                   # open to the classroom network (see the README)
/// ```
struct ClassroomCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classroom",
        abstract: "Serve the classroom page: live generations, attention maps, forward noising.",
        discussion: """
            Without --checkpoint (or SD_CHECKPOINT) it uses the shapes model shipped in Examples/tiny-shapes, \
            which draws a picture in well under a second. It listens on 127.0.0.1 (this computer only) unless \
            --host says otherwise.
            """)

    @Option(name: .long, help: ArgumentHelp(
        "A Stable Diffusion 1.x .safetensors or .ckpt file, or a diffusers folder (default: $SD_CHECKPOINT, else the shipped shapes model).",
        valueName: "path"))
    var checkpoint: String?

    @Option(help: "The address to listen on: 127.0.0.1 for this computer only, 0.0.0.0 for every network it is on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (1-65535).")
    var port = 8080

    @Option(help: "How many generations may wait in the queue (1-1000); one more is told the server is busy.")
    var queue = 16

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be from 1 to 65535, got \(port)") }
        guard (1...1000).contains(queue) else { throw ValidationError("--queue must be from 1 to 1000, got \(queue)") }
    }

    func run() async throws {
        guard let chosen = LessonCheckpoint.model(checkpoint) else {
            throw LessonError("the classroom needs a model: pass --checkpoint PATH (\"none\" is for the lessons' built-in material)")
        }
        print("loading \(chosen.name) ...")
        let model: ClassroomModel
        do { model = try ClassroomModel(chosen) } catch { throw LessonError("cannot use checkpoint: \(error)") }
        let server = ClassroomServer(model: model, queue: GenerationQueue(capacity: queue))
        let (host, port, info) = (self.host, self.port, model.info)
        let application = server.application(host: host, port: port) { _ in
            let shown = host == "0.0.0.0" ? "127.0.0.1" : host
            print("""
                sd classroom: \(info.name), \(info.side)x\(info.side) pictures
                open http://\(shown):\(port)/ in a browser\(host == "127.0.0.1" ? " (this computer only; --host 0.0.0.0 opens it to the network)" : "")
                press Ctrl-C to stop
                """)
            fflush(stdout)   // shown at once even when the output goes to a file
        }
        do {
            try await application.runService()
        } catch {
            throw LessonError(Self.listeningProblem(error, host: host, port: port))
        }
    }

    /// A failure to listen, in words: the usual ones are a port in use and an unknown address.
    static func listeningProblem(_ error: any Error, host: String, port: Int) -> String {
        let text = "\(error)"
        if text.contains("Address already in use") {
            return "cannot listen on \(host):\(port): the port is already in use (another sd classroom?); choose another with --port"
        }
        if text.contains("UnknownHost") || text.contains("Cannot assign requested address") {
            return "cannot listen on \(host):\(port): this computer has no such address; use 127.0.0.1, 0.0.0.0 or one of its own addresses (hostname -I)"
        }
        return "cannot listen on \(host):\(port): \(text)"
    }
}
