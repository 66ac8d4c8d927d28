import Classroom
import Foundation
import HummingbirdTesting
import Testing

/// `sd classroom` refuses what it cannot do with one sentence and a non-zero exit.
@Suite("sd classroom: bad command lines", .timeLimit(.minutes(3)))
struct ClassroomCommandTests {
    typealias Support = ClassroomTestSupport

    @Test("bad options, a missing checkpoint, an address it cannot listen on")
    func badCommandLines() throws {
        let cases: [(arguments: [String], words: String)] = [
            (["--port", "0"], "--port must be from 1 to 65535, got 0"),
            (["--port", "70000"], "--port must be from 1 to 65535"),
            (["--queue", "0"], "--queue must be from 1 to 1000"),
            (["--checkpoint", "/nonexistent/model.safetensors"], "cannot use checkpoint: checkpoint '/nonexistent/model.safetensors' does not exist"),
            (["--checkpoint", "none"], "the classroom needs a model"),
            (["--host", "999.1.1.1", "--port", "8099"], "cannot listen on 999.1.1.1:8099: this computer has no such address"),
        ]
        for item in cases {
            let run = try Support.sd(["classroom"] + item.arguments)
            #expect(run.status != 0, "\(item.arguments)")
            #expect(run.errors.contains(item.words), "\(item.arguments): \(run.errors)")
        }
    }

    @Test("a port already taken is named as such")
    func portInUse() async throws {
        try await Support.application().test(.live) { client in
            let port = try #require(client.port)
            let run = try Support.sd(["classroom", "--port", "\(port)"])
            #expect(run.status != 0)
            #expect(run.errors.contains("cannot listen on 127.0.0.1:\(port): the port is already in use"), "\(run.errors)")
        }
    }
}
