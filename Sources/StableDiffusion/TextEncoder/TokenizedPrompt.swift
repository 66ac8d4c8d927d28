/// A prompt as the text encoder sees it: 77 token ids, with the text of each token.
///
///     "a photograph of an astronaut riding a horse"
///
///     position   id      token
///      0         49406   <|startoftext|>
///      1           320   a
///      2          8853   photograph
///      3           539   of
///      4           550   an
///      5         18376   astronaut
///      6          6765   riding
///      7           320   a
///      8          4558   horse
///      9         49407   <|endoftext|>
///     10...76    49407   <|endoftext|> as padding
///
/// Stable Diffusion 1.x always feeds exactly 77 ids: `<|startoftext|>`, at most 75 content
/// tokens, `<|endoftext|>`, then `<|endoftext|>` again as padding.
public struct TokenizedPrompt: Sendable, Equatable {
    /// The 77 ids the text encoder reads.
    public let ids: [Int]
    /// The content tokens, `ids[1...tokens.count]`, without the start, end and padding tokens.
    public let tokens: [PromptToken]
    /// How many content tokens were cut off because the prompt was longer than 75 tokens
    /// (0 if it fit). The model never sees them; callers should warn.
    public let truncatedCount: Int

    public init(ids: [Int], tokens: [PromptToken], truncatedCount: Int) {
        self.ids = ids
        self.tokens = tokens
        self.truncatedCount = truncatedCount
    }

    /// Position of the `<|endoftext|>` that closes the content (the first padding-like id).
    public var endPosition: Int { tokens.count + 1 }

    /// Number of padding ids after the end token.
    public var paddingCount: Int { ids.count - endPosition - 1 }
}

/// One token of a prompt: its id and its text, readable.
public struct PromptToken: Sendable, Equatable, CustomStringConvertible {
    public let id: Int
    /// The characters this token stands for, lower-cased as the tokenizer saw them: "photo",
    /// "," or "猫". Bytes that do not form whole UTF-8 characters (an emoji is often split
    /// over two tokens) are shown as `<0xF0>`. Special tokens show as themselves.
    public let text: String
    /// Whether the token ends a word (its vocabulary entry ends in `</w>`). "astronaut" is one
    /// token that ends a word; the rare word "stablediffusion" is "stable" + "dif" + "fusion",
    /// and only the last of those ends it.
    public let endsWord: Bool

    public init(id: Int, text: String, endsWord: Bool) {
        self.id = id
        self.text = text
        self.endsWord = endsWord
    }

    /// `text`, followed by "-" when the word continues in the next token: "stable-".
    public var description: String { endsWord ? text : text + "-" }
}
