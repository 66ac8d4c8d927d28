import Foundation

/// The last few finished runs' files, for the page's "save" buttons (`/api/runs/ID.png`, `.gif`).
///
/// Kept in memory only, and only the newest `capacity`, so a day of class cannot fill the disk
/// or the memory. IDs are random, so one page cannot guess another's.
final class RecentRuns: @unchecked Sendable {
    let capacity: Int
    private let lock = NSLock()
    private var runs: [(id: String, run: ClassroomModel.FinishedRun)] = []

    init(capacity: Int = 16) {
        self.capacity = capacity
    }

    /// Keeps `run` and returns its ID.
    func add(_ run: ClassroomModel.FinishedRun) -> String {
        let id = UUID().uuidString.lowercased()
        lock.withLock {
            runs.append((id, run))
            if runs.count > capacity { runs.removeFirst(runs.count - capacity) }
        }
        return id
    }

    func run(_ id: String) -> ClassroomModel.FinishedRun? {
        lock.withLock { runs.last { $0.id == id }?.run }
    }
}
