import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The page's files (`Page/` in this module's resources: HTML, CSS, JavaScript, no build step and
/// nothing from the network), read once at start-up and served from memory.
///
/// Only the files found there at start-up can be asked for, by their bare names, so no request
/// can reach any other file on the machine.
struct PageFiles: Sendable {
    private let files: [String: Data]

    init() {
        var files: [String: Data] = [:]
        if let folder = Bundle.module.url(forResource: "Page", withExtension: nil),
           let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) {
            for name in names {
                files[name] = try? Data(contentsOf: folder.appendingPathComponent(name))
            }
        }
        self.files = files
    }

    static let types = ["html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
                        "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml", "png": "image/png"]

    func response(_ name: String) throws -> Response {
        guard let data = files[name] else {
            return .failure(ClassroomError.badRequest("the page has no file '\(name.prefix(60))'"), status: .notFound)
        }
        let type = Self.types[(name as NSString).pathExtension] ?? "application/octet-stream"
        return Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"],
                        body: .init(byteBuffer: ByteBuffer(data: data)))
    }
}
