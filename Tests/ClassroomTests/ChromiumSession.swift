import Foundation
import Logging
import NIOCore
import WSClient

/// Headless Chromium, driven over its DevTools protocol (JSON over a WebSocket): open a page,
/// evaluate JavaScript in it, take a screenshot.
///
/// ```swift
/// let browser = try ChromiumSession.launch("/usr/bin/chromium", url: "http://127.0.0.1:8080/")
/// defer { browser.close() }
/// try await browser.drive { page in let title = try await page.evaluate("document.title") }
/// ```
final class ChromiumSession: @unchecked Sendable {
    /// The browser's executable, if one is installed.
    static var executable: String? {
        let folders = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for folder in folders where FileManager.default.isExecutableFile(atPath: "\(folder)/\(name)") {
                return "\(folder)/\(name)"
            }
        }
        return nil
    }

    let process: Process
    let profile: URL
    /// The browser's DevTools WebSocket address.
    let address: String

    private init(process: Process, profile: URL, address: String) {
        self.process = process
        self.profile = profile
        self.address = address
    }

    /// Starts the browser on `url` in a window of `width` x `height` and waits for its DevTools port.
    static func launch(_ executable: String, url: String, width: Int = 1400, height: Int = 1700) throws -> ChromiumSession {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("classroom-chromium-\(UUID().uuidString)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                             "--remote-debugging-port=0", "--remote-allow-origins=*", "--user-data-dir=\(profile.path)",
                             "--window-size=\(width),\(height)", url]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Chromium prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/…" on stderr.
        var printed = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let data = errors.fileHandleForReading.availableData
            if data.isEmpty { break }
            printed += String(decoding: data, as: UTF8.self)
            if let range = printed.range(of: #"ws://127\.0\.0\.1:\d+/devtools/browser/[0-9a-f-]+"#, options: .regularExpression) {
                // Keep draining stderr so the browser never blocks on a full pipe.
                errors.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
                return ChromiumSession(process: process, profile: profile, address: String(printed[range]))
            }
        }
        process.terminate()
        throw BrowserError("Chromium did not open its DevTools port; it printed: \(printed.suffix(500))")
    }

    func close() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: profile)
    }

    /// Connects to the browser, attaches to its page and runs `body` with it.
    func drive(_ body: @escaping @Sendable (Page) async throws -> Void) async throws {
        let logger = Logger(label: "chromium")
        try await WebSocketClient.connect(url: address, configuration: .init(maxFrameSize: 1 << 24), logger: logger) {
            inbound, outbound, _ in
            let page = Page(inbound: inbound.messages(maxSize: 1 << 26).makeAsyncIterator(), outbound: outbound)
            try await page.attach()
            _ = try await page.call("Runtime.enable")
            try await body(page)
            try await outbound.close(.normalClosure, reason: nil)
        }
    }

    /// One page's protocol session: a call sends `{"id", "method", "params", "sessionId"}` and
    /// waits for the answer with that id; exceptions reported in between are kept.
    final class Page: @unchecked Sendable {
        private var inbound: WebSocketInboundMessageStream.AsyncIterator
        private let outbound: WebSocketOutboundWriter
        private var lastID = 0
        /// The page's session on the browser's connection (nil: commands go to the browser).
        private var session: String?
        /// Exceptions thrown by the page's scripts, as Chromium describes them.
        private(set) var exceptions: [String] = []

        init(inbound: WebSocketInboundMessageStream.AsyncIterator, outbound: WebSocketOutboundWriter) {
            self.inbound = inbound
            self.outbound = outbound
        }

        /// Finds the browser's page (the one opened on the URL) and attaches to it.
        func attach() async throws {
            for _ in 0..<100 {
                let targets = try await call("Target.getTargets")["targetInfos"] as? [[String: Any]] ?? []
                if let page = targets.first(where: { $0["type"] as? String == "page" }), let id = page["targetId"] as? String {
                    session = try await call("Target.attachToTarget", ["targetId": id, "flatten": true])["sessionId"] as? String
                    return
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw BrowserError("Chromium has no page to drive")
        }

        func call(_ method: String, _ parameters: [String: Any] = [:]) async throws -> [String: Any] {
            lastID += 1
            var message: [String: Any] = ["id": lastID, "method": method, "params": parameters]
            if let session { message["sessionId"] = session }
            let request = try JSONSerialization.data(withJSONObject: message)
            try await outbound.write(.text(String(decoding: request, as: UTF8.self)))
            while let message = try await inbound.next() {
                guard case .text(let text) = message,
                      let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { continue }
                if json["method"] as? String == "Runtime.exceptionThrown" { exceptions.append(text) }
                if json["id"] as? Int == lastID {
                    if let error = json["error"] { throw BrowserError("\(method) failed: \(error)") }
                    return json["result"] as? [String: Any] ?? [:]
                }
            }
            throw BrowserError("Chromium closed the connection during \(method)")
        }

        /// The value of a JavaScript expression (strings, numbers, booleans, or JSON-able objects).
        func evaluate(_ expression: String) async throws -> Any? {
            let result = try await call("Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true])
            if let details = result["exceptionDetails"] { throw BrowserError("the page threw: \(details)") }
            return (result["result"] as? [String: Any])?["value"]
        }

        /// Evaluates `condition` every 100 ms until it is true or `seconds` have passed.
        func wait(until condition: String, seconds: Double) async throws -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                // Until the page has loaded, its elements are missing and the expression throws.
                if let value = try? await evaluate(condition), value as? Bool == true { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }

        /// A PNG of what the window shows.
        func screenshot() async throws -> Data {
            let result = try await call("Page.captureScreenshot", ["format": "png"])
            guard let base64 = result["data"] as? String, let png = Data(base64Encoded: base64) else {
                throw BrowserError("Chromium sent no screenshot")
            }
            return png
        }
    }
}

struct BrowserError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
