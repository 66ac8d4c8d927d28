import Dispatch
import Foundation

import _CWorkers

/// Splits work across the CPU's cores.
///
/// Every heavy operation (GEMM, convolution, attention, normalisation) cuts its work into
/// independent pieces and hands them to `Parallel.forEach`, which runs them on all cores with
/// `DispatchQueue.concurrentPerform`. Pieces must write to disjoint memory.
public enum Parallel {
    /// How many threads heavy operations use: all cores, or `SD_THREADS` if set (useful to measure
    /// single-core speed, or to leave a core free in class).
    public static let threadCount: Int = {
        if let text = ProcessInfo.processInfo.environment["SD_THREADS"], let n = Int(text), n > 0 {
            return n
        }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Runs `body(i)` for every `i` in `0..<count`, in parallel when there is more than one piece.
    ///
    /// The pieces go to the calling thread and `threadCount − 1` worker threads that stay awake for
    /// a moment between loops (Sources/_CWorkers/workers.c), so that a short loop does not start
    /// with a wake-up; while those are busy with another thread's loop, to libdispatch's threads.
    /// A loop started inside a piece runs on that piece's thread.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || threadCount == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var loop = body
            let ran = withUnsafeMutablePointer(to: &loop) { loop in
                workers_run(count, Int32(threadCount - 1), loop) { context, index in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
                }
            }
            if ran == 0 { DispatchQueue.concurrentPerform(iterations: count, execute: body) }
        }
    }

    /// Cuts `0..<total` into about `threadCount * 4` contiguous ranges of at least `minimumChunk`
    /// elements and runs `body` on each in parallel. Good for elementwise and row-wise work.
    @inlinable
    public static func forEachChunk(of total: Int, minimumChunk: Int = 16_384,
                                    _ body: (Range<Int>) -> Void) {
        if total <= 0 { return }
        let pieces = max(1, min(threadCount * 4, total / max(1, minimumChunk)))
        let chunk = (total + pieces - 1) / pieces
        forEach(pieces) { piece in
            let start = piece * chunk
            let end = min(total, start + chunk)
            if start < end { body(start..<end) }
        }
    }
}

/// A pointer that may be captured by the closures `Parallel` runs concurrently. Callers promise
/// that concurrent pieces touch disjoint elements.
@usableFromInline
struct SendablePointer<Pointee>: @unchecked Sendable {
    @usableFromInline let pointer: UnsafeMutablePointer<Pointee>
    @usableFromInline init(_ pointer: UnsafeMutablePointer<Pointee>) { self.pointer = pointer }
}
