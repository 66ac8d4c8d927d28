import Dispatch
import Foundation
import StableDiffusion

/// The class's generations, one at a time, in the order they were asked for.
///
/// A CPU draws one picture fastest when it draws only that one (every core works on it), so runs
/// never overlap. At most `capacity` runs wait; one more is refused with `ClassroomError.busy`, and
/// one page may have at most `perOwner` waiting (a comparison needs two), so a single student
/// cannot fill the queue. When a page closes, its waiting runs are dropped and its running one is
/// stopped at the next step (`dropWork(of:)`).
///
/// ```swift
/// let queue = GenerationQueue(capacity: 16)
/// try await queue.run(owner: pageID, positionChanged: { print("place", $0) }) { cancelled in
///     try model.picture(request, cancellation: cancelled)
/// }
/// ```
public actor GenerationQueue {
    private struct Job {
        let owner: UUID?
        let cancellation: CancellationFlag
        let positionChanged: @Sendable (Int) -> Void
        let work: @Sendable (CancellationFlag) -> Void
        /// Tells the caller its run was dropped before it started.
        let drop: @Sendable () -> Void
    }

    public let capacity: Int
    public let perOwner: Int
    private var waiting: [Job] = []
    private var running: Job?
    /// Runs finished since the server started (for the health check).
    public private(set) var finished = 0
    /// The thread the generations run on, away from the server's event loops.
    private let worker = DispatchQueue(label: "classroom.generation", qos: .userInitiated)

    public init(capacity: Int = 16, perOwner: Int = 2) {
        self.capacity = capacity
        self.perOwner = perOwner
    }

    /// Runs waiting, and whether one is running.
    public var state: (waiting: Int, running: Bool) { (waiting.count, running != nil) }

    /// Queues `body`, waits for its turn, runs it on the generation thread and returns its result.
    ///
    /// - Throws: `ClassroomError.busy` at once when the queue (or the owner's share of it) is
    ///   full; `ClassroomError.cancelled` when the owner leaves before the run starts; else
    ///   whatever `body` throws.
    public func run<Result: Sendable>(owner: UUID? = nil, positionChanged: @escaping @Sendable (Int) -> Void = { _ in },
                                      _ body: @escaping @Sendable (CancellationFlag) throws -> Result) async throws -> Result {
        guard waiting.count < capacity else {
            throw ClassroomError.busy("the queue is full (\(capacity) pictures waiting); try again in a moment")
        }
        if let owner, waiting.filter({ $0.owner == owner }).count >= perOwner {
            throw ClassroomError.busy("this page already has \(perOwner) pictures waiting; wait for them first")
        }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
            let job = Job(owner: owner, cancellation: CancellationFlag(), positionChanged: positionChanged,
                          work: { cancellation in
                              // Runs on `worker`; a run dropped while waiting never gets here.
                              if cancellation.isSet { return continuation.resume(throwing: ClassroomError.cancelled) }
                              continuation.resume(with: Swift.Result { try body(cancellation) })
                          },
                          drop: { continuation.resume(throwing: ClassroomError.cancelled) })
            waiting.append(job)
            positionChanged(running == nil ? waiting.count - 1 : waiting.count)
            startNext()
        }
    }

    /// Drops the waiting runs of `owner` and stops its running one at the next step.
    public func dropWork(of owner: UUID) {
        let dropped = waiting.filter { $0.owner == owner }
        waiting.removeAll { $0.owner == owner }
        for job in dropped { job.drop() }
        if let running, running.owner == owner { running.cancellation.cancel() }
        announcePositions()
    }

    private func startNext() {
        guard running == nil, !waiting.isEmpty else { return }
        let job = waiting.removeFirst()
        running = job
        announcePositions()
        worker.async {
            job.work(job.cancellation)
            Task { await self.finish() }
        }
    }

    private func finish() {
        running = nil
        finished += 1
        startNext()
    }

    /// Tells every waiting run its place: 0 is next.
    private func announcePositions() {
        let offset = running == nil ? 0 : 1
        for (index, job) in waiting.enumerated() { job.positionChanged(index + offset) }
    }
}
