/// Byte-pair encoding (Sennrich et al., 2016): splits one word into vocabulary pieces by replaying
/// the merges CLIP learned, in the order it learned them.
///
/// The merge list is a ranking of symbol pairs, learned by counting which adjacent pair was most
/// frequent in CLIP's training text, merging it everywhere, and repeating. Encoding replays that
/// history on a single word: start from single characters (here: the stand-ins of its UTF-8
/// bytes, see `ByteEncoder`), the last one marked `</w>` for "end of word", and repeatedly merge
/// the adjacent pair that was learned earliest (lowest rank), until no adjacent pair is in the list:
///
///     p h o t o</w>      lowest-ranked pair: (t, o</w>), rank 19
///     p h o to</w>       (h, o), rank 94
///     p ho to</w>        (p, ho), rank 304
///     pho to</w>         (pho, to</w>), rank 613
///     photo</w>          one piece: a common word is a single token
///
/// A rarer word stops with several pieces: "stablediffusion" ends as `stable dif fusion</w>`.
public struct BytePairEncoding: Sendable {
    /// Two adjacent symbols, as one line `"left right"` of the merges file.
    public struct Pair: Hashable, Sendable {
        public let left: String
        public let right: String

        public init(_ left: String, _ right: String) {
            self.left = left
            self.right = right
        }
    }

    /// The marker appended to the last symbol of a word, so that "a" inside "cat" and the word
    /// "a" are different tokens.
    public static let endOfWord = "</w>"

    /// Rank of every merge: its line number in the merges file, 0 first.
    public let ranks: [Pair: Int]

    /// - Parameter merges: the merge list in priority order (earliest learned first).
    public init(merges: [Pair]) {
        var ranks: [Pair: Int] = [:]
        ranks.reserveCapacity(merges.count)
        // If a pair were listed twice, the first (lower) rank is the one that counts.
        for (rank, pair) in merges.enumerated() where ranks[pair] == nil { ranks[pair] = rank }
        self.ranks = ranks
    }

    /// The pieces of one word, given as byte stand-in characters without the end-of-word marker:
    /// `"photo"` → `["photo</w>"]`, `"stablediffusion"` → `["stable", "dif", "fusion</w>"]`.
    public func encode(_ word: String) -> [String] {
        var symbols = word.map { String($0) }
        guard !symbols.isEmpty else { return [] }
        symbols[symbols.count - 1] += Self.endOfWord

        while symbols.count > 1 {
            // The adjacent pair learned earliest.
            var best: (rank: Int, pair: Pair)?
            for i in 0..<(symbols.count - 1) {
                let pair = Pair(symbols[i], symbols[i + 1])
                if let rank = ranks[pair], rank < (best?.rank ?? Int.max) { best = (rank, pair) }
            }
            guard let pair = best?.pair else { break }

            symbols = Self.merging(pair, in: symbols)
        }
        return symbols
    }

    /// `symbols` with every occurrence of `pair` joined into one symbol, left to right
    /// (`a a a` → `aa a`).
    static func merging(_ pair: Pair, in symbols: [String]) -> [String] {
        var merged: [String] = []
        merged.reserveCapacity(symbols.count)
        var i = 0
        while i < symbols.count {
            if i + 1 < symbols.count && symbols[i] == pair.left && symbols[i + 1] == pair.right {
                merged.append(pair.left + pair.right)
                i += 2
            } else {
                merged.append(symbols[i])
                i += 1
            }
        }
        return merged
    }
}
