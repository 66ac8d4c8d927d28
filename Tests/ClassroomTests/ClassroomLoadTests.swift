import Classroom
import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdWSTesting
import Testing
import WSClient

/// A class at once: twenty pages on loopback ask for pictures together.
@Suite("Classroom server: twenty pages at once", .serialized)
struct ClassroomLoadTests {
    typealias Support = ClassroomTestSupport

    /// How one page's run ended: "done", "busy", "failed", or "closed" (the page left early).
    actor Outcomes {
        var all: [String] = []
        func add(_ outcome: String) { all.append(outcome) }
    }

    /// Resident memory of this process in bytes (Linux's /proc; 0 elsewhere).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    /// `pages` pages connect at once and each asks for one 20-step picture; the first `leaving`
    /// of them close as soon as they have asked.
    static func classRound(_ client: any TestClientProtocol, pages: Int, leaving: Int, outcomes: Outcomes) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for page in 0..<pages {
                group.addTask {
                    try await client.ws("/ws", configuration: .init(maxFrameSize: 1 << 20)) { inbound, outbound, _ in
                        let settings = #"{"prompt": "a blue circle at the top", "steps": 20, "cfg": 3, "seed": \#(page)}"#
                        try await outbound.write(.text(#"{"type": "generate", "run": "p\#(page)", "settings": \#(settings)}"#))
                        if page < leaving { await outcomes.add("closed"); return }
                        for try await message in inbound.messages(maxSize: 1 << 24) {
                            guard case .text(let text) = message else { continue }
                            if let end = ["done", "busy", "failed"].first(where: { text.contains(#""type":"\#($0)""#) }) {
                                await outcomes.add(end)
                                return
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test("every page's run completes or is told the queue is full; closed pages' runs are dropped; memory stays bounded")
    func twentyPages() async throws {
        let queue = GenerationQueue(capacity: 8)
        try await Support.application(queue: queue).test(.live) { client in
            // A first round warms the server up (networks loaded, buffers allocated).
            let warmUp = Outcomes()
            try await Self.classRound(client, pages: 20, leaving: 0, outcomes: warmUp)
            let before = Self.residentBytes()

            var totals: [String: Int] = [:]
            for _ in 0..<3 {
                let outcomes = Outcomes()
                try await Self.classRound(client, pages: 20, leaving: 5, outcomes: outcomes)
                let all = await outcomes.all
                #expect(all.count == 20)
                // One runs and 8 wait, so at least 9 runs are taken; up to 5 of them may be those
                // of pages that left (dropped once the server sees them go). Every page that
                // stayed got its picture or was told the queue is full.
                var counts: [String: Int] = [:]
                for outcome in all { counts[outcome, default: 0] += 1 }
                #expect(counts["done", default: 0] >= 9 - 5, "\(counts)")
                #expect(counts["done", default: 0] + counts["busy", default: 0] + counts["closed", default: 0] == 20, "\(counts)")
                totals.merge(counts, uniquingKeysWith: +)
            }
            // The queue empties: nothing is stuck waiting for a page that left.
            for _ in 0..<500 where await queue.state != (0, false) { try await Task.sleep(for: .milliseconds(10)) }
            #expect(await queue.state == (0, false))
            let grown = Self.residentBytes() - before
            let finished = await queue.finished
            print("load: \(totals), \(finished) runs finished, resident memory grew \(grown / 1_048_576) MB over 60 pages")
            // Each finished run keeps at most its PNG and GIF (tens of KB, 16 runs); 64 MB is far above
            // what three rounds can legitimately add, and far below what keeping every frame would.
            #expect(grown < 64 * 1_048_576)
        }
    }
}
