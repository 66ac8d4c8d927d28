import Classroom
import Foundation
import Testing

/// The queue that makes the class's runs take turns.
@Suite("Classroom server: the generation queue", .timeLimit(.minutes(2)))
struct GenerationQueueTests {
    /// A gate the first run waits at, so the test decides when the worker is free again.
    final class Gate: @unchecked Sendable {
        let semaphore = DispatchSemaphore(value: 0)
        func wait() { semaphore.wait() }
        func open() { semaphore.signal() }
    }

    /// Collects what a run is told of its place (told from the queue's actor, in order).
    final class Places: @unchecked Sendable {
        private let lock = NSLock()
        private var places: [String: [Int]] = [:]
        func add(_ run: String, _ place: Int) { lock.withLock { places[run, default: []].append(place) } }
        var seen: [String: [Int]] { lock.withLock { places } }
    }

    /// The order in which runs ran (appended on the generation thread).
    final class Order: @unchecked Sendable {
        private let lock = NSLock()
        private var runs: [Int] = []
        func add(_ run: Int) { lock.withLock { runs.append(run) } }
        var all: [Int] { lock.withLock { runs } }
    }

    /// Waits (briefly) until a run is running and `count` runs wait behind it.
    func waitUntil(_ queue: GenerationQueue, waiting count: Int) async throws {
        for _ in 0..<2_000 where await queue.state != (count, true) { try await Task.sleep(for: .milliseconds(2)) }
        #expect(await queue.state == (count, true))
    }

    @Test("runs take turns in order; one beyond the bound is told the queue is full")
    func bound() async throws {
        let queue = GenerationQueue(capacity: 2, perOwner: 5)
        let gate = Gate()
        let places = Places()
        let order = Order()
        let first = Task { try await queue.run { _ in gate.wait(); return 1 } }
        try await waitUntil(queue, waiting: 0)
        let second = Task { try await queue.run(positionChanged: { places.add("second", $0) }) { _ in
            order.add(2); return 2 } }
        try await waitUntil(queue, waiting: 1)
        let third = Task { try await queue.run(positionChanged: { places.add("third", $0) }) { _ in
            order.add(3); return 3 } }
        try await waitUntil(queue, waiting: 2)
        await #expect(throws: ClassroomError.busy("the queue is full (2 pictures waiting); try again in a moment")) {
            try await queue.run { _ in 4 }
        }
        gate.open()
        #expect(try await first.value == 1)
        #expect(try await second.value == 2)
        #expect(try await third.value == 3)
        #expect(order.all == [2, 3])
        try await Task.sleep(for: .milliseconds(50))
        // Places count the runs ahead: the second had one ahead until it ran; the third had two, then one.
        #expect(places.seen["second"] == [1])
        #expect(places.seen["third"] == [2, 1])
        #expect(await queue.finished == 3)
    }

    @Test("one page may have only its share waiting")
    func perOwner() async throws {
        let queue = GenerationQueue(capacity: 10, perOwner: 2)
        let gate = Gate()
        let page = UUID()
        let running = Task { try await queue.run { _ in gate.wait() } }
        try await waitUntil(queue, waiting: 0)
        let a = Task { try await queue.run(owner: page) { _ in } }
        let b = Task { try await queue.run(owner: page) { _ in } }
        try await waitUntil(queue, waiting: 2)
        await #expect(throws: ClassroomError.self) { try await queue.run(owner: page) { _ in } }
        let otherPage = Task { try await queue.run(owner: UUID()) { _ in } }   // another page still may queue
        try await waitUntil(queue, waiting: 3)
        gate.open()
        _ = try await (running.value, a.value, b.value, otherPage.value)
    }

    @Test("a closed page's waiting runs are dropped and its running one is asked to stop")
    func dropWork() async throws {
        let queue = GenerationQueue(capacity: 10)
        let gate = Gate()
        let page = UUID()
        let running = Task {
            try await queue.run(owner: page) { cancelled -> Bool in gate.wait(); return cancelled.isSet }
        }
        try await waitUntil(queue, waiting: 0)
        let waiting = Task { try await queue.run(owner: page) { _ in "should not run" } }
        let other = Task { try await queue.run(owner: UUID()) { _ in "other page" } }
        try await waitUntil(queue, waiting: 2)
        await queue.dropWork(of: page)
        #expect(await queue.state.waiting == 1)
        await #expect(throws: ClassroomError.cancelled) { try await waiting.value }
        gate.open()
        #expect(try await running.value == true)       // it saw the stop sign
        #expect(try await other.value == "other page") // the rest of the class goes on
    }
}
