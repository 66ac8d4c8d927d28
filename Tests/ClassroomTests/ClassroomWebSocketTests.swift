import Classroom
import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdWSTesting
import NIOCore
import Testing
import WSClient

/// The page's live channel: a run arrives as `queued`, `started`, one `step` per denoising step
/// and `done`; bad messages get an answer and do not break the connection.
@Suite("Classroom server: WebSocket", .timeLimit(.minutes(3)))
struct ClassroomWebSocketTests {
    typealias Support = ClassroomTestSupport
    /// The server's messages are sent in frames of up to 64 KB; a browser takes any size.
    static let client = WebSocketClientConfiguration(maxFrameSize: 1 << 20)

    /// The messages of one session in which the page sends `messages`, until `done`/`failed`/`busy`
    /// has arrived `expectedEnds` times.
    static func session(_ messages: [String], expectedEnds: Int) async throws -> [[String: Any]] {
        try await Support.application().test(.live) { client in
            let received = Received()
            try await client.ws("/ws", configuration: Self.client) { inbound, outbound, _ in
                for message in messages { try await outbound.write(.text(message)) }
                var ends = 0
                for try await message in inbound.messages(maxSize: 1 << 24) {
                    guard case .text(let text) = message,
                          let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { continue }
                    await received.add(json)
                    if ["done", "failed", "busy"].contains(json["type"] as? String ?? "") { ends += 1 }
                    if ends == expectedEnds { break }
                }
            }
            return await received.all
        }
    }

    actor Received {
        var all: [[String: Any]] = []
        func add(_ message: [String: Any]) { all.append(message) }
    }

    @Test("one step message per denoising step, each with its three pictures and the words' maps")
    func oneFramePerStep() async throws {
        let settings = #"{"prompt": "a red circle on the left", "steps": 6, "cfg": 3, "seed": 11}"#
        let messages = try await Self.session([#"{"type": "generate", "run": "r1", "settings": \#(settings)}"#], expectedEnds: 1)
        let types = messages.map { $0["type"] as? String ?? "" }
        #expect(types.first == "hello")
        #expect(types.contains("queued"))
        let started = try #require(messages.first { $0["type"] as? String == "started" })
        let steps = messages.filter { $0["type"] as? String == "step" }
        // PNDM with 6 steps evaluates the UNet 7 times (its first step is a Runge-Kutta-like pair).
        #expect(started["steps"] as? Int == 7)
        #expect(steps.count == 7)
        #expect(steps.map { $0["index"] as? Int ?? -1 } == Array(0..<7))
        let words = (started["words"] as? [[String: Any]] ?? []).map { $0["word"] as? String ?? "" }
        #expect(words == ["a", "red", "circle", "on", "the", "left"])
        let side = (started["mapWidth"] as? Int ?? 0) * (started["mapHeight"] as? Int ?? 0)
        #expect(side == 64)   // the 8x8 latent of a 64x64 picture
        var previousAlpha = 0.0
        for step in steps {
            for key in ["noisy", "noise", "clean"] { #expect((step[key] as? String ?? "").hasPrefix("data:image/png;base64,")) }
            let attention = step["attention"] as? [[Int]] ?? []
            #expect(attention.count == 6 && attention.allSatisfy { $0.count == 64 && $0.max() == 255 })
            // Noise falls step by step: ᾱ_t rises towards 1, and σ_t = √((1 − ᾱ_t)/ᾱ_t).
            let alpha = step["alphaBar"] as? Double ?? 0, sigma = step["sigma"] as? Double ?? 0
            #expect(alpha >= previousAlpha)
            #expect(abs(sigma - ((1 - alpha) / alpha).squareRoot()) < 1e-3 * sigma)
            previousAlpha = alpha
        }
        let done = try #require(messages.last)
        #expect(done["type"] as? String == "done")
        #expect((done["png"] as? String ?? "").hasPrefix("/api/runs/"))
        #expect((done["gif"] as? String ?? "").hasSuffix(".gif"))
    }

    @Test("a finished run's PNG and GIF can be downloaded; the PNG carries its settings")
    func savedRun() async throws {
        try await Support.application().test(.live) { client in
            let done = Received()
            try await client.ws("/ws", configuration: Self.client) { inbound, outbound, _ in
                try await outbound.write(.text(#"{"type": "generate", "run": "s", "settings": {"prompt": "a green circle", "steps": 4, "seed": 2}}"#))
                for try await message in inbound.messages(maxSize: 1 << 24) {
                    guard case .text(let text) = message, text.contains(#""type":"done""#) else { continue }
                    await done.add(try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any])
                    break
                }
            }
            let message = try #require(await done.all.first)
            try await client.execute(uri: message["png"] as! String, method: .get) { response in
                #expect(response.status == .ok)
                let text = String(decoding: Data(buffer: response.body), as: UTF8.self)
                #expect(text.contains("prompt: a green circle, negative prompt: , steps: 4, cfg: 7.5, seed: 2"))
            }
            try await client.execute(uri: message["gif"] as! String, method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "image/gif")
                #expect(Data(buffer: response.body).prefix(6) == Data("GIF89a".utf8))
            }
        }
    }

    @Test("every page hears of the class: pages open, and the picture another page made")
    func classGallery() async throws {
        try await Support.application().test(.live) { client in
            let watcher = Received()
            let drawn = Received()
            try await withThrowingTaskGroup(of: Void.self) { group in
                // The watcher only listens, until a class message shows a picture in the gallery.
                group.addTask {
                    try await client.ws("/ws", configuration: Self.client) { inbound, _, _ in
                        for try await message in inbound.messages(maxSize: 1 << 24) {
                            guard case .text(let text) = message, text.contains(#""type":"class""#) else { continue }
                            let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
                            await watcher.add(json)
                            if !(json["gallery"] as? [Any] ?? []).isEmpty { break }
                        }
                    }
                }
                // The drawer waits until two pages are open, then asks for a picture.
                group.addTask {
                    try await client.ws("/ws", configuration: Self.client) { inbound, outbound, _ in
                        for try await message in inbound.messages(maxSize: 1 << 24) {
                            guard case .text(let text) = message else { continue }
                            if text.contains(#""pages":2"#) {
                                try await outbound.write(.text(#"{"type": "generate", "run": "g", "settings": {"prompt": "a yellow square", "seed": 9, "steps": 5}}"#))
                            }
                            if text.contains(#""type":"done""#) { await drawn.add(["done": true]); break }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let messages = await watcher.all
            #expect(await drawn.all.count == 1)
            #expect(messages.contains { $0["pages"] as? Int == 2 })
            let entry = try #require((messages.last?["gallery"] as? [[String: Any]])?.first)
            let settings = entry["settings"] as? [String: Any] ?? [:]
            #expect(settings["prompt"] as? String == "a yellow square")
            #expect(settings["seed"] as? Int == 9 && settings["steps"] as? Int == 5 && settings["scheduler"] as? String == "pndm")
            #expect((entry["thumbnail"] as? String ?? "").hasPrefix("data:image/png;base64,"))
            #expect((entry["png"] as? String ?? "").hasPrefix("/api/runs/"))
        }
    }

    @Test("bad messages are answered, and the connection goes on working")
    func badMessages() async throws {
        let messages = try await Self.session([
            "not json",
            #"{"type": "dance"}"#,
            #"{"type": "generate", "run": "x"}"#,
            #"{"type": "generate", "run": "big", "settings": {"prompt": "x", "steps": 1000000000}}"#,
            #"{"type": "generate", "run": "narrow", "settings": {"prompt": "x", "width": 3}}"#,
            #"{"type": "generate", "run": "ok", "settings": {"prompt": "x", "steps": 2}}"#,
        ], expectedEnds: 6)
        let failures = messages.filter { $0["type"] as? String == "failed" }.map { $0["message"] as? String ?? "" }
        #expect(failures.contains { $0.contains("not valid JSON") })
        #expect(failures.contains { $0.contains("unknown message type 'dance'") })
        #expect(failures.contains { $0.contains("needs its 'settings'") })
        #expect(failures.contains { $0.contains("steps must be from 1 to 200") })
        #expect(failures.contains { $0.contains("width must be a multiple of 8") })
        #expect(messages.contains { $0["type"] as? String == "done" && $0["run"] as? String == "ok" })
    }

    @Test("a message over 64 KB closes the connection with 'message too big'")
    func oversizedMessage() async throws {
        try await Support.application().test(.live) { client in
            let close = try await client.ws("/ws", configuration: Self.client) { inbound, outbound, _ in
                let prompt = String(repeating: "a", count: 10_000_000)
                try await outbound.write(.text(#"{"type": "generate", "settings": {"prompt": "\#(prompt)"}}"#))
                for try await _ in inbound.messages(maxSize: 1 << 24) {}
            }
            #expect(close?.closeCode == .messageTooLarge)
            // The server is still there for everyone else.
            try await client.execute(uri: "/api/health", method: .get) { response in #expect(response.status == .ok) }
        }
    }
}
