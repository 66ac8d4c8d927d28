import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import StableDiffusion

/// The classroom page's web server: the page itself, its WebSocket, and an HTTP API for scripts.
///
/// | route | what it does |
/// |---|---|
/// | `GET /` and `/page/…` | the page (HTML, CSS, JavaScript served from the binary's resources) |
/// | `GET /ws` (WebSocket) | live runs: see `ClassroomMessages.swift` |
/// | `POST /api/generate` | JSON settings → the PNG `sd generate` writes for them |
/// | `GET /api/health` | model, queue length, runs done |
/// | `GET /api/runs/ID.png`, `.gif` | a finished run's picture and animation |
/// | `POST /api/pictures` | upload a PNG/JPEG for the forward-noising panel → `{"picture": ID}` |
/// | `GET /api/noise?picture=…&t=…&seed=…` | that picture noised to t, with ᾱ_t and the SNR |
///
/// ```swift
/// let server = ClassroomServer(model: try ClassroomModel(model))
/// try await server.application(host: "127.0.0.1", port: 8080).runService()
/// ```
public struct ClassroomServer: Sendable {
    public typealias Context = BasicWebSocketRequestContext
    public let model: ClassroomModel
    public let queue: GenerationQueue
    public let limits: ClassroomLimits
    let runs = RecentRuns()
    let hub: ClassroomHub
    let pictures: NoisingPictures
    let page: PageFiles

    public init(model: ClassroomModel, queue: GenerationQueue = GenerationQueue(), limits: ClassroomLimits = ClassroomLimits()) {
        self.model = model
        self.queue = queue
        self.limits = limits
        hub = ClassroomHub(queue: queue)
        pictures = NoisingPictures(alphasCumprod: model.alphasCumprod)
        page = PageFiles()
    }

    /// The whole server, ready to `runService()` (or to test); `onRunning` is called once it listens.
    public func application(host: String = "127.0.0.1", port: Int = 8080,
                            onRunning: @escaping @Sendable (any Channel) async -> Void = { _ in })
        -> some ApplicationProtocol {
        let router = Router(context: Context.self)
        routes(router)
        let webSockets = Router(context: Context.self)
        webSockets.ws("/ws") { inbound, outbound, _ in
            try await PageConnection(server: self, outbound: outbound).serve(inbound.messages(maxSize: limits.messageBytes))
        }
        return Application(
            router: router,
            server: .http1WebSocketUpgrade(webSocketRouter: webSockets,
                                           configuration: .init(ws: .init(maxFrameSize: limits.messageBytes))),
            configuration: .init(address: .hostname(host, port: port), serverName: "sd classroom"),
            onServerRunning: onRunning)
    }

    func routes(_ router: Router<Context>) {
        router.get("/") { _, _ in try page.response("index.html") }
        router.get("/page/:file") { _, context in try page.response(context.parameters.require("file")) }
        router.get("/api/health") { _, _ in try await health() }
        router.post("/api/generate") { request, _ in try await generate(request) }
        router.get("/api/runs/:file") { _, context in try savedRun(context.parameters.require("file")) }
        router.post("/api/pictures") { request, _ in try await upload(request) }
        router.get("/api/noise") { request, _ in try noise(request) }
    }

    // MARK: The API

    func health() async throws -> Response {
        let state = await queue.state
        struct Health: Encodable {
            let status = "ok"
            let model: ModelInfo
            let waiting: Int, running: Bool, finished: Int, capacity: Int
        }
        return .json(Health(model: model.info, waiting: state.waiting, running: state.running,
                            finished: await queue.finished, capacity: queue.capacity))
    }

    /// `POST /api/generate`: the picture as `sd generate` writes it, after its turn in the queue.
    func generate(_ request: Request) async throws -> Response {
        do {
            let body = try await request.body.collect(upTo: limits.messageBytes)
            let settings = try ClassroomSettings.decode(Data(buffer: body))
            let generation = try settings.request(modelSide: model.info.side, limits: limits)
            let model = self.model
            let png = try await queue.run { cancelled in try model.picture(generation, cancellation: cancelled) }
            return Response(status: .ok, headers: [.contentType: "image/png"], body: .init(byteBuffer: ByteBuffer(data: png)))
        } catch {
            return .failure(error)
        }
    }

    func savedRun(_ file: String) throws -> Response {
        let parts = file.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, let run = runs.run(parts[0]), ["png", "gif"].contains(parts[1]) else {
            return .failure(ClassroomError.badRequest("no such run: it may be older than the last \(runs.capacity)"), status: .notFound)
        }
        let isPNG = parts[1] == "png"
        return Response(status: .ok,
                        headers: [.contentType: isPNG ? "image/png" : "image/gif",
                                  .contentDisposition: "attachment; filename=\"classroom-\(parts[0].prefix(8)).\(parts[1])\""],
                        body: .init(byteBuffer: ByteBuffer(data: isPNG ? run.png : run.gif)))
    }

    func upload(_ request: Request) async throws -> Response {
        do {
            let body = try await request.body.collect(upTo: limits.uploadBytes)
            let id = try pictures.upload(Data(buffer: body), limits: limits)
            return .json(["picture": id])
        } catch {
            return .failure(error)
        }
    }

    func noise(_ request: Request) throws -> Response {
        do {
            let query = request.uri.queryParameters
            let name = query.get("picture") ?? "hills"
            guard let t = Int(query.get("t") ?? "500") else { throw ClassroomError.badRequest("t must be a whole number from 0 to 999") }
            guard let seed = UInt64(query.get("seed") ?? "0") else { throw ClassroomError.badRequest("seed must be a whole number, 0 or more") }
            return .json(try pictures.noised(name, t: t, seed: seed))
        } catch {
            return .failure(error)
        }
    }
}

extension Response {
    /// A JSON body with status 200.
    static func json(_ value: some Encodable) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: value.jsonText())))
    }

    /// `{"error": "…"}` with the status the error calls for: 400 for a bad request, 413 for one
    /// too large, 503 when the queue is full.
    static func failure(_ error: any Error, status: HTTPResponse.Status? = nil) -> Response {
        let (code, message): (HTTPResponse.Status, String)
        switch error {
        case ClassroomError.badRequest(let text): (code, message) = (.badRequest, text)
        case ClassroomError.busy(let text): (code, message) = (.serviceUnavailable, text)
        case ClassroomError.cancelled: (code, message) = (.serviceUnavailable, "the server stopped the run")
        case is NIOTooManyBytesError:
            (code, message) = (.contentTooLarge, "the request is too large: the most is \(ClassroomLimits().messageBytes / 1024) KB for settings, \(ClassroomLimits().uploadBytes / 1_048_576) MB for a picture")
        case let error as GenerationError: (code, message) = (.badRequest, error.description)
        default: (code, message) = (.internalServerError, "\(error)")
        }
        return Response(status: status ?? code, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: ["error": message].jsonText())))
    }
}
