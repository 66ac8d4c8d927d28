/// Which steps of a run a table or picture shows.
public enum StepSelection {
    /// About `count` indices spread evenly over `0..<total`, always with the first and the last:
    /// `i · (total − 1) / (count − 1)` rounded down, without repeats; all of them when
    /// `total ≤ count`.
    public static func evenlySpaced(_ total: Int, count: Int) -> [Int] {
        guard total > count else { return Array(0..<total) }
        return Array(Set((0..<count).map { $0 * (total - 1) / (count - 1) })).sorted()
    }
}
