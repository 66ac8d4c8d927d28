import StableDiffusion

extension AttentionMaps {
    /// The average shares of attention over all steps: the start token's, the end token's with
    /// its padding, and what is left for the prompt's words, `1 − start − end`.
    public var averageShares: (start: Float, end: Float, words: Float) {
        let start = Statistics.mean(steps.map(\.startShare)), end = Statistics.mean(steps.map(\.endShare))
        return (start, end, 1 - start - end)
    }

    /// The share of attention of content `positions` (1-based) in one step: their `tokenShares`, summed.
    public static func share(of positions: [Int], in step: Step) -> Float {
        positions.reduce(Float(0)) { $0 + step.tokenShares[$1 - 1] }
    }

    /// Where a latent-size map is largest: `(x, y)` of its first maximum, row-major.
    public func peak(of map: [Float]) -> (x: Int, y: Int) {
        let index = map.indices.max { map[$0] < map[$1] } ?? 0
        return (index % latentWidth, index / latentWidth)
    }

    /// The different sizes the cross-attention layers work at, largest first (by area).
    public var distinctLayerSizes: [(width: Int, height: Int)] {
        var seen: [(width: Int, height: Int)] = []
        for size in layerSizes where !seen.contains(where: { $0 == (size.width, size.height) }) {
            seen.append((size.width, size.height))
        }
        return seen.sorted { ($0.width * $0.height, $0.width) > ($1.width * $1.height, $1.width) }
    }

    /// The content position (1-based) of the token that gets the most attention over the run,
    /// among those with a letter in them (punctuation is left out); position 1 when none has.
    public func loudestWordPosition(tokens: [PromptToken]) -> Int {
        let candidates = (1...tokens.count).filter { tokens[$0 - 1].text.contains(where: \.isLetter) }
        return candidates.max { share(positions: [$0]) < share(positions: [$1]) } ?? 1
    }
}
