import Foundation

/// Turns a prompt into the words that byte-pair encoding then splits further: text clean-up,
/// the special tokens, and CLIP's word pattern.
///
/// Stable Diffusion's pipelines (diffusers) tokenize with transformers' `CLIPTokenizer`. In
/// transformers 5 that class is backed by the Rust `tokenizers` library; there is no separate
/// "slow" Python tokenizer any more, and no `ftfy` or `BasicTokenizer` step. This type matches
/// that tokenizer, step by step:
///
/// 1. The special tokens `<|startoftext|>` and `<|endoftext|>`, written exactly so, are cut out of
///    the raw text first and become their ids (49406, 49407) directly.
/// 2. Each remaining stretch of text is put in Unicode normal form C, so "e" + combining acute
///    (U+0065 U+0301) becomes the single "é" (U+00E9) and both spellings give the same tokens.
/// 3. Runs of whitespace become one space, then every character is lower-cased with Unicode's
///    full mapping (one character at a time, so a final "Σ" becomes "σ", not "ς").
/// 4. CLIP's pattern cuts the text into words (whitespace only separates them and is dropped):
///
///        <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
///
///    that is: an English contraction ending (`'s` in "it's"), a run of letters, a single digit
///    (so "1024" is four words), or a run of other symbols ("!!!", ",", "(").
///    The two special-token alternatives never fire at this point: step 1 took the exact
///    spellings out, and what is left (say "<|EndOfText|>", now lower case) is cut by the
///    `tokenizers` byte-level step into "<|", "endoftext", "|>", which is just what the rest of
///    the pattern gives. The pattern is case-insensitive, which no longer matters after step 3.
///
/// OpenAI's original tokenizer (and open_clip's copy) differs in three ways that matter only for
/// unusual prompts: it first repairs the text with `ftfy.fix_text` (which turns the curly
/// apostrophe in "don’t" into "'"), it un-escapes HTML entities ("&amp;" → "&"), and it lower-cases
/// before looking for the special tokens (so "<|ENDOFTEXT|>" is special there but three ordinary
/// words here).
///
/// Whitespace is Unicode's White_Space property (tab, newline, no-break space, ideographic space,
/// ...); letters `\p{L}` and numbers `\p{N}` are Unicode's general categories L* and N*. Swift's
/// Unicode tables are one version newer than the `tokenizers` library's: the few thousand
/// characters new in Unicode 17 (CJK Extension J, for one) are letters here and symbols there.
/// On every other code point the two agree.
public enum CLIPPreTokenizer {
    /// One piece of a prompt: a special token, or a word for byte-pair encoding.
    public enum Piece: Equatable, Sendable {
        case special(String)
        case word(String)
    }

    public static let startOfText = "<|startoftext|>"
    public static let endOfText = "<|endoftext|>"

    /// The prompt, cut into special tokens and cleaned-up words, in order.
    ///
    ///     pieces("A Photo, 42!")  →  [.word("a"), .word("photo"), .word(","), .word("4"), .word("2"), .word("!")]
    public static func pieces(_ text: String) -> [Piece] {
        var pieces: [Piece] = []
        var stretch = String.UnicodeScalarView()
        let scalars = Array(text.unicodeScalars)
        let specials = [startOfText, endOfText].map { Array($0.unicodeScalars) }
        var i = 0
        while i < scalars.count {
            if let special = specials.first(where: { scalars[i...].starts(with: $0) }) {
                pieces += words(in: String(stretch)).map(Piece.word)
                stretch = String.UnicodeScalarView()
                pieces.append(.special(String(String.UnicodeScalarView(special))))
                i += special.count
            } else {
                stretch.append(scalars[i])
                i += 1
            }
        }
        pieces += words(in: String(stretch)).map(Piece.word)
        return pieces
    }

    /// Steps 2 and 3: normal form C, then lower case one character at a time.
    ///
    /// (Collapsing whitespace runs into one space is left to `words(in:)`, which drops all
    /// whitespace anyway.)
    public static func normalize(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.precomposedStringWithCanonicalMapping.unicodeScalars {
            out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        }
        return String(out)
    }

    /// Steps 2 to 4 on text without special tokens: the words of CLIP's pattern, in order.
    public static func words(in text: String) -> [String] {
        let s = Array(normalize(text).unicodeScalars)
        var words: [String] = []
        var i = 0
        func take(_ end: Int) {
            words.append(String(String.UnicodeScalarView(s[i..<end])))
            i = end
        }
        while i < s.count {
            let c = s[i]
            if c.properties.isWhitespace {
                i += 1
            } else if let length = contractionLength(s, at: i) {
                take(i + length)                                   // 's 't 're 've 'm 'll 'd
            } else if isLetter(c) {
                var end = i + 1
                while end < s.count && isLetter(s[end]) { end += 1 }
                take(end)                                          // [\p{L}]+
            } else if isNumber(c) {
                take(i + 1)                                        // [\p{N}]
            } else {
                var end = i + 1
                while end < s.count && isOther(s[end]) { end += 1 }
                take(end)                                          // [^\s\p{L}\p{N}]+
            }
        }
        return words
    }

    /// Length of the contraction ending (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`) at `i`, if any.
    /// Like the pattern, it does not look further: "'dog" gives `'d` and then "og".
    private static func contractionLength(_ s: [Unicode.Scalar], at i: Int) -> Int? {
        guard s[i] == "'" else { return nil }
        for ending in ["s", "t", "re", "ve", "m", "ll", "d"] {
            let tail = Array(ending.unicodeScalars)
            if s[(i + 1)...].starts(with: tail) { return 1 + tail.count }
        }
        return nil
    }

    /// `\p{L}`: Lu, Ll, Lt, Lm or Lo.
    private static func isLetter(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// `\p{N}`: Nd, Nl or No.
    private static func isNumber(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// `[^\s\p{L}\p{N}]`: punctuation, symbols, marks, controls, emoji.
    private static func isOther(_ c: Unicode.Scalar) -> Bool {
        !c.properties.isWhitespace && !isLetter(c) && !isNumber(c)
    }
}
