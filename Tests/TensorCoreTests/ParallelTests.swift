import Dispatch
import Foundation
import Testing

import TensorCore

/// Counts, per index, how often a loop body ran (the bodies of one loop run concurrently).
private final class Tally: @unchecked Sendable {
    private var counts: [Int]
    private let lock = NSLock()
    init(_ size: Int) { counts = [Int](repeating: 0, count: size) }
    func add(_ i: Int) { lock.lock(); counts[i] += 1; lock.unlock() }
    var all: [Int] { lock.lock(); defer { lock.unlock() }; return counts }
}

@Suite("Parallel loops: every index once, on worker threads that spin before they sleep")
struct ParallelTests {
    @Test("every index runs exactly once, for loops of every size, many loops in a row",
          arguments: [2, 3, 8, 97, 1000])
    func everyIndexOnce(count: Int) {
        for _ in 0..<200 {
            let tally = Tally(count)
            Parallel.forEach(count) { tally.add($0) }
            #expect(tally.all.allSatisfy { $0 == 1 })
        }
    }

    @Test("a loop started inside a loop's body runs, whole, on that body's thread")
    func nested() {
        let tally = Tally(8 * 8), elsewhere = Tally(1)
        Parallel.forEach(8) { outer in
            let thread = pthread_self()
            Parallel.forEach(8) { inner in
                tally.add(outer * 8 + inner)
                if pthread_equal(thread, pthread_self()) == 0 { elsewhere.add(0) }
            }
        }
        #expect(tally.all.allSatisfy { $0 == 1 })
        #expect(elsewhere.all == [0])
    }

    @Test("loops started from several threads at once all finish, each index once")
    func concurrentCallers() {
        let tallies = (0..<6).map { _ in Tally(50) }
        DispatchQueue.concurrentPerform(iterations: tallies.count) { caller in
            for _ in 0..<100 { Parallel.forEach(50) { tallies[caller].add($0) } }
        }
        for tally in tallies { #expect(tally.all.allSatisfy { $0 == 100 }) }
    }

    @Test("a loop after a pause long enough for the workers to sleep wakes them")
    func afterSleep() {
        let tally = Tally(16)
        Parallel.forEach(16) { tally.add($0) }
        Thread.sleep(forTimeInterval: 0.01)   // 10 ms: far past the workers' spin
        Parallel.forEach(16) { tally.add($0) }
        #expect(tally.all.allSatisfy { $0 == 2 })
    }
}
