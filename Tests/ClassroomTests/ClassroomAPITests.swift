import Classroom
import Foundation
import FrameExport
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// The HTTP API a script (or the page) uses: the picture, the health check, bad requests,
/// forward noising and uploads, the page's own files.
@Suite("Classroom server: HTTP API", .timeLimit(.minutes(3)))
struct ClassroomAPITests {
    typealias Support = ClassroomTestSupport

    @Test("POST /api/generate returns the very file `sd generate` writes for the same settings")
    func pictureEqualsCommandLine() async throws {
        let cases: [(json: String, arguments: [String])] = [
            (#"{"prompt": "a red circle on the left"}"#, []),
            (#"{"prompt": "a blue square at the top", "negative_prompt": "red", "seed": 7, "steps": 12, "cfg": 3, "scheduler": "euler-a", "width": 72, "height": 64}"#,
             ["--negative-prompt", "red", "--seed", "7", "--steps", "12", "--cfg", "3", "--scheduler", "euler-a", "--width", "72", "--height", "64"]),
        ]
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("classroom-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (index, item) in cases.enumerated() {
            let prompt = (try JSONSerialization.jsonObject(with: Data(item.json.utf8)) as! [String: Any])["prompt"] as! String
            let file = folder.appendingPathComponent("\(index).png").path
            let status = try Support.sd(["generate", "--checkpoint", Support.shapesModel.path, "--prompt", prompt, "--output", file] + item.arguments)
            #expect(status.status == 0)
            let expected = try Data(contentsOf: URL(fileURLWithPath: file))
            try await Support.application().test(.router) { client in
                try await client.execute(uri: "/api/generate", method: .post, body: Support.body(item.json)) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == "image/png")
                    #expect(Data(buffer: response.body) == expected)
                }
            }
        }
    }

    @Test("bad requests get status 400 or 413 and one sentence naming the problem")
    func badRequests() async throws {
        let tenMegabytePrompt = #"{"prompt": ""# + String(repeating: "a", count: 10_000_000) + #""}"#
        let cases: [(body: String, status: HTTPResponse.Status, words: String)] = [
            (tenMegabytePrompt, .contentTooLarge, "too large"),
            (#"{"prompt": ""# + String(repeating: "a", count: 5_000) + #""}"#, .badRequest, "the most is 1000"),
            (#"{"prompt": "x", "steps": 1000000000}"#, .badRequest, "steps must be from 1 to 200"),
            (#"{"prompt": "x", "steps": 0}"#, .badRequest, "steps must be from 1 to 200"),
            (#"{"prompt": "x", "width": 3}"#, .badRequest, "width must be a multiple of 8"),
            (#"{"prompt": "x", "height": 4096}"#, .badRequest, "height must be a multiple of 8 from 64 to 1024"),
            (#"{"prompt": "x", "cfg": -1}"#, .badRequest, "cfg"),
            (#"{"prompt": "x", "seed": -5}"#, .badRequest, "seed must be a whole number, 0 or more"),
            (#"{"prompt": "x", "seed": "five"}"#, .badRequest, "'seed' has the wrong type"),
            (#"{"prompt": "x", "scheduler": "magic"}"#, .badRequest, "scheduler must be one of"),
            (#"{"prompt": 12}"#, .badRequest, "'prompt' has the wrong type"),
            (#"{"negative_prompt": "x"}"#, .badRequest, "no 'prompt'"),
            (#"{"prompt": "x""#, .badRequest, "not valid JSON"),
            ("", .badRequest, "not valid JSON"),
        ]
        try await Support.application().test(.router) { client in
            for item in cases {
                try await client.execute(uri: "/api/generate", method: .post, body: Support.body(item.body)) { response in
                    #expect(response.status == item.status, "\(item.body.prefix(60))")
                    let message = Support.json(response.body)["error"] as? String ?? ""
                    #expect(message.contains(item.words), "\(item.body.prefix(60)): \(message)")
                }
            }
            // The server still works after all of them.
            try await client.execute(uri: "/api/generate", method: .post, body: Support.body(#"{"prompt": "x", "steps": 2}"#)) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test("GET /api/health names the model and the queue")
    func health() async throws {
        try await Support.application(queue: GenerationQueue(capacity: 5)).test(.router) { client in
            try await client.execute(uri: "/api/health", method: .get) { response in
                let health = Support.json(response.body)
                #expect(response.status == .ok)
                #expect(health["status"] as? String == "ok")
                #expect(health["capacity"] as? Int == 5)
                #expect(health["waiting"] as? Int == 0)
                let model = health["model"] as? [String: Any] ?? [:]
                #expect(model["side"] as? Int == 64)
                #expect(model["vocabulary"] as? Int == 559)
                #expect(model["isShapesModel"] as? Bool == true)
            }
        }
    }

    @Test("forward noising: ᾱ_t and the SNR of the model's schedule; bad t and names refused")
    func forwardNoising() async throws {
        let alphas = Support.model.pipeline.configuration.scheduler.alphasCumprod()
        try await Support.application().test(.router) { client in
            for t in [0, 500, 999] {
                try await client.execute(uri: "/api/noise?picture=hills&t=\(t)&seed=3", method: .get) { response in
                    let view = Support.json(response.body)
                    let alphaBar = Float((view["alphaBar"] as? Double) ?? -1)
                    #expect(abs(alphaBar - alphas[t]) < 1e-6)
                    #expect(abs(Float((view["snr"] as? Double) ?? -1) - alphas[t] / (1 - alphas[t])) < 1e-3 * alphas[t] / (1 - alphas[t]))
                    let image = (view["image"] as? String) ?? ""
                    #expect(image.hasPrefix("data:image/png;base64,"))
                    let png = try RGBImage(decoding: Data(base64Encoded: String(image.dropFirst("data:image/png;base64,".count)))!)
                    #expect(png.width == 256 && png.height == 256)
                }
            }
            for (query, words) in [("picture=hills&t=1000", "t must be from 0 to 999"), ("picture=hills&t=-1", "t must be"),
                                   ("picture=hills&t=ten", "whole number"), ("picture=../../etc/passwd&t=5", "no picture called")] {
                try await client.execute(uri: "/api/noise?\(query)", method: .get) { response in
                    #expect(response.status == .badRequest)
                    #expect((Support.json(response.body)["error"] as? String ?? "").contains(words), "\(query)")
                }
            }
        }
    }

    @Test("uploads: a PNG is read and can be noised; other bytes and oversized bodies are refused")
    func uploads() async throws {
        var picture = RGBImage(width: 300, height: 200)
        for y in 0..<200 { for x in 0..<300 { picture[x, y] = RGBColor(UInt8(x % 256), UInt8(y), 90) } }
        let png = try picture.pngData()
        try await Support.application().test(.router) { client in
            let id = try await client.execute(uri: "/api/pictures", method: .post, body: ByteBuffer(data: png)) { response in
                #expect(response.status == .ok)
                return Support.json(response.body)["picture"] as? String ?? ""
            }
            #expect(id.hasPrefix("upload-"))
            try await client.execute(uri: "/api/noise?picture=\(id)&t=0", method: .get) { response in
                let image = Support.json(response.body)["image"] as? String ?? ""
                let decoded = try RGBImage(decoding: Data(base64Encoded: String(image.dropFirst("data:image/png;base64,".count)))!)
                #expect(decoded.width == 256 && decoded.height == 171)   // shrunk to 256 on the long side
            }
            let notAPicture = ByteBuffer(string: "GIF89a, or anything else")
            try await client.execute(uri: "/api/pictures", method: .post, body: notAPicture) { response in
                #expect(response.status == .badRequest)
                #expect((Support.json(response.body)["error"] as? String ?? "").contains("PNG or JPEG"))
            }
            let truncated = ByteBuffer(data: png.prefix(png.count / 2))
            try await client.execute(uri: "/api/pictures", method: .post, body: truncated) { response in
                #expect(response.status == .badRequest)
            }
            let huge = ByteBuffer(repeating: 0, count: 5 * 1_048_576)
            try await client.execute(uri: "/api/pictures", method: .post, body: huge) { response in
                #expect(response.status == .contentTooLarge)
            }
        }
    }

    @Test("the page's files are served; nothing else is")
    func pageFiles() async throws {
        try await Support.application().test(.router) { client in
            for (uri, type) in [("/", "text/html"), ("/page/classroom.js", "text/javascript"), ("/page/classroom.css", "text/css")] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .ok, "\(uri)")
                    #expect(response.headers[.contentType]?.hasPrefix(type) == true, "\(uri)")
                    #expect(response.body.readableBytes > 500, "\(uri)")
                }
            }
            for uri in ["/page/..%2F..%2FPackage.swift", "/page/secret.txt", "/api/runs/nothing.png", "/api/runs/..%2Fx.gif"] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .notFound, "\(uri)")
                }
            }
        }
    }
}
