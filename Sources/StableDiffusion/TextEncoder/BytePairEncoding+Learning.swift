/// Learning a merge list from text, the way CLIP's was learned (Sennrich et al., 2016, algorithm 1),
/// for a model that brings its own small vocabulary:
///
///     every word starts as its characters, the last marked </w>
///     repeat: count every adjacent pair of symbols over all words (a word counts as often as it occurs),
///             merge the most frequent pair everywhere, and write it down as the next merge
///
/// until every word is a single symbol or `maximumMerges` are written. Ties go to the pair that
/// sorts first, so the same text always gives the same list.
///
/// ```swift
/// let merges = BytePairEncoding.learnMerges(words: ["a": 10, "red": 3, "green": 2])
/// BytePairEncoding(merges: merges).encode("red")      // ["red</w>"]
/// BytePairEncoding(merges: merges).encode("reed")     // ["re", "e", "d</w>"]: an unseen word, in pieces
/// ```
extension BytePairEncoding {
    /// - Parameter words: each word (as `ByteEncoder` stand-ins, without `</w>`) and how often it occurs.
    public static func learnMerges(words: [String: Int], maximumMerges: Int = 10_000) -> [Pair] {
        var corpus = words.sorted { $0.key < $1.key }.map { word, count -> (symbols: [String], count: Int) in
            var symbols = word.map { String($0) }
            if !symbols.isEmpty { symbols[symbols.count - 1] += endOfWord }
            return (symbols, count)
        }
        var merges: [Pair] = []
        while merges.count < maximumMerges {
            var counts: [Pair: Int] = [:]
            for (symbols, count) in corpus where symbols.count > 1 {
                for i in 0..<(symbols.count - 1) { counts[Pair(symbols[i], symbols[i + 1]), default: 0] += count }
            }
            guard let best = counts.max(by: { a, b in
                a.value != b.value ? a.value < b.value : (a.key.left, a.key.right) > (b.key.left, b.key.right)
            })?.key else { break }
            merges.append(best)
            for index in corpus.indices { corpus[index].symbols = merging(best, in: corpus[index].symbols) }
        }
        return merges
    }
}
