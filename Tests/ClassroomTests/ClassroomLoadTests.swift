import Classroom
import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdWSTesting
import Testing
import WSClient

/// A class at once: twenty pages on loopback ask for pictures together.
@Suite("Classroom server: twenty pages at once", .serialized, .timeLimit(.minutes(5)))
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

    /// Pages `pages` connect at once and each asks for one 20-step picture; with `leaving`, they
    /// close as soon as they have asked.
    static func connect(_ client: any TestClientProtocol, pages: Range<Int>, leaving: Bool, outcomes: Outcomes) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for page in pages {
                group.addTask {
                    try await client.ws("/ws", configuration: .init(maxFrameSize: 1 << 20)) { inbound, outbound, _ in
                        let settings = #"{"prompt": "a blue circle at the top", "steps": 20, "cfg": 3, "seed": \#(page)}"#
                        try await outbound.write(.text(#"{"type": "generate", "run": "p\#(page)", "settings": \#(settings)}"#))
                        if leaving { await outcomes.add("closed"); return }
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

    /// Waits until the queue is empty and idle: nothing stuck behind a page that left.
    static func drained(_ queue: GenerationQueue) async throws -> Bool {
        for _ in 0..<1_000 where await queue.state != (0, false) { try await Task.sleep(for: .milliseconds(10)) }
        return await queue.state == (0, false)
    }

    @Test("every page's run completes or is told the queue is full; closed pages' runs are dropped; memory stays bounded")
    func twentyPages() async throws {
        let queue = GenerationQueue(capacity: 8)
        try await Support.application(queue: queue).test(.live) { client in
            // Twenty pages ask together: one runs and 8 wait, so at least 9 get their picture; every
            // other page is told the queue is full. (This round also warms the server up.)
            let first = Outcomes()
            try await Self.connect(client, pages: 0..<20, leaving: false, outcomes: first)
            let firstAll = await first.all
            let firstDone = firstAll.filter { $0 == "done" }.count, firstBusy = firstAll.filter { $0 == "busy" }.count
            #expect(firstDone >= 9 && firstDone + firstBusy == 20, "\(firstAll)")
            #expect(try await Self.drained(queue))
            let before = Self.residentBytes()

            var totals: [String: Int] = [:]
            for _ in 0..<3 {
                // Five pages ask and leave at once: their runs are dropped (or stopped at the next
                // step), and the queue empties.
                let outcomes = Outcomes()
                try await Self.connect(client, pages: 0..<5, leaving: true, outcomes: outcomes)
                #expect(try await Self.drained(queue))
                // Fifteen ask together: one runs and 8 wait, so at least 9 get their picture
                // (more when runs finish while others connect); the others are told the queue is full.
                try await Self.connect(client, pages: 5..<20, leaving: false, outcomes: outcomes)
                var counts: [String: Int] = [:]
                for outcome in await outcomes.all { counts[outcome, default: 0] += 1 }
                #expect(counts["closed"] == 5)
                #expect(counts["done", default: 0] >= 9, "\(counts)")
                #expect(counts["done", default: 0] + counts["busy", default: 0] == 15, "\(counts)")
                totals.merge(counts, uniquingKeysWith: +)
            }
            #expect(try await Self.drained(queue))
            let grown = Self.residentBytes() - before
            let finished = await queue.finished
            print("load: \(totals), \(finished) runs finished or stopped, resident memory grew \(grown / 1_048_576) MB over 60 pages")
            // Each finished run keeps at most its PNG and GIF (tens of KB, the last 16 runs); 64 MB
            // is far above what three rounds can legitimately add, and far below what keeping
            // every run's frames would.
            #expect(grown < 64 * 1_048_576)
        }
    }
}
