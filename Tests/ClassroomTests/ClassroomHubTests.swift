import Classroom
import Foundation
import Testing

/// The class line every page shows: which prompt is being drawn, even when the news of a run's
/// start (sent from the generation thread) arrives after the news of its end.
@Suite("Classroom server: the class's state")
struct ClassroomHubTests {
    /// The hub's announcements to one page, decoded.
    static func announcements(_ body: (ClassroomHub) async -> Void) async throws -> [[String: Any]] {
        let hub = ClassroomHub(queue: GenerationQueue())
        let (stream, sender) = AsyncStream<String>.makeStream()
        await hub.join(UUID(), sender: sender)
        await body(hub)
        sender.finish()
        var messages: [[String: Any]] = []
        for await text in stream {
            messages.append(try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any])
        }
        return messages
    }

    @Test("a run is shown while it is drawn, and not after it ended")
    func drawing() async throws {
        let run = UUID()
        let messages = try await Self.announcements { hub in
            await hub.drawing(run, prompt: "a red circle")
            await hub.ended(run, entry: nil)
        }
        #expect(messages.map { $0["drawing"] as? String } == [nil, "a red circle", nil])
        #expect(messages.first?["pages"] as? Int == 1)
    }

    @Test("a start heard after the end is ignored")
    func lateStart() async throws {
        let run = UUID()
        let messages = try await Self.announcements { hub in
            await hub.ended(run, entry: nil)
            await hub.drawing(run, prompt: "a late circle")
        }
        #expect(messages.count == 2)
        #expect(messages.allSatisfy { $0["drawing"] as? String == nil })
    }

    @Test("the gallery keeps the newest eight, newest first")
    func gallery() async throws {
        let messages = try await Self.announcements { hub in
            for index in 0..<10 {
                let entry = GalleryEntry(thumbnail: "", png: "/api/runs/\(index).png", settings: ClassroomSettings(prompt: "picture \(index)"))
                await hub.ended(UUID(), entry: entry)
            }
        }
        let entries = messages.last?["gallery"] as? [[String: Any]] ?? []
        var prompts: [String] = []
        for entry in entries {
            let settings = entry["settings"] as? [String: Any] ?? [:]
            prompts.append(settings["prompt"] as? String ?? "")
        }
        let expected: [String] = (2..<10).reversed().map { "picture \($0)" }
        #expect(prompts == expected)
    }
}
