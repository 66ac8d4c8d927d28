import Foundation
import StableDiffusion

/// The prompt as words, for swapping one and finding its tokens.
public enum PromptWords {
    /// The prompt split at white space.
    public static func words(_ prompt: String) -> [String] {
        prompt.split(whereSeparator: \.isWhitespace).map(String.init)
    }

    /// A word without the punctuation around it, lower-cased: "Apple," → "apple".
    public static func core(of word: String) -> String {
        word.trimmingCharacters(in: .punctuationCharacters.union(.symbols)).lowercased()
    }

    /// `words` with word `index` replaced by `new`, its punctuation kept ("apple," → "pear,").
    public static func swapping(_ words: [String], at index: Int, with new: String) -> [String] {
        var words = words
        words[index] = words[index].replacingOccurrences(of: core(of: words[index]), with: new, options: .caseInsensitive)
        return words
    }

    /// The 1-based token positions of word `index` of `words`: the tokens of the words before it
    /// come first, then at least one of its own.
    public static func tokenPositions(ofWord index: Int, in words: [String], tokenizer: CLIPTokenizer) -> [Int] {
        let before = tokenizer.encode(words[..<index].joined(separator: " ")).count
        let count = max(1, tokenizer.encode(words[index]).count)
        return Array((before + 1)...(before + count))
    }

    /// For a model with a small vocabulary of its own (the shapes model's 559 tokens, against
    /// CLIP's 49,408): a sentence naming the words of `text` it has no token for, or nil. The
    /// prompt still runs; those words become pieces with no meaning.
    public static func unlearnedWordsNotice(_ text: String, tokenizer: CLIPTokenizer) -> String? {
        guard tokenizer.vocabularySize < 10_000 else { return nil }
        let unknown = tokenizer.wordsWithoutToken(in: text)
        guard !unknown.isEmpty else { return nil }
        let list = unknown.map { "'\($0)'" }.joined(separator: ", ")
        return "this model never learned the word\(unknown.count == 1 ? "" : "s") \(list) (its vocabulary of \(tokenizer.vocabularySize) tokens comes from its training captions); it reads them as pieces with no meaning and follows the rest of the prompt"
    }

    /// The tokens a too-long prompt loses: the last `tokens.truncatedCount` of its full encoding.
    public static func droppedTokens(_ prompt: String, tokens: TokenizedPrompt, tokenizer: CLIPTokenizer)
        -> (all: Int, dropped: [String]) {
        let all = tokenizer.encode(prompt)
        return (all.count, all.suffix(tokens.truncatedCount).compactMap { tokenizer.token(for: $0)?.description })
    }
}

extension TokenizedPrompt {
    /// How many tokens are the first part of a longer word (shown with a trailing '-').
    public var wordPieceCount: Int { tokens.filter { !$0.endsWord }.count }
}
