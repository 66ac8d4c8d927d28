import Foundation

/// CLIP's byte-level BPE tokenizer, as Stable Diffusion 1.x uses it: prompt text in, 77 token ids out.
///
/// A prompt goes through four steps:
///
///     "A Photograph of an astronaut!"
///     → words            a | photograph | of | an | astronaut | !        (CLIPPreTokenizer)
///     → byte stand-ins   the UTF-8 bytes of each word as printable characters (ByteEncoder)
///     → BPE pieces       a</w> | photograph</w> | ... | !</w>             (BytePairEncoding)
///     → ids              320, 8853, 539, 550, 18376, 256                  (the vocabulary)
///
/// and `tokenize(_:)` frames the ids as the text encoder expects them: `<|startoftext|>` (49406),
/// at most 75 content ids, `<|endoftext|>` (49407), then padding to 77 ids.
///
/// The vocabulary has 49,408 entries, all derived from the merges list: the 256 byte stand-ins,
/// the same 256 with `</w>`, the result of each of the 48,894 merges, and the two special tokens.
///
/// ```swift
/// let tokenizer = try CLIPTokenizer()
/// let prompt = tokenizer.tokenize("a photograph of an astronaut riding a horse")
/// prompt.ids          // [49406, 320, 8853, 539, 550, 18376, 6765, 320, 4558, 49407, 49407, ...]
/// prompt.tokens[1]    // PromptToken(id: 8853, text: "photograph", endsWord: true)
/// ```
public final class CLIPTokenizer: @unchecked Sendable {
    /// Ids per prompt: start + 75 content tokens + end. CLIP's position table has 77 rows.
    public static let contextLength = 77
    /// Content tokens that fit between the start and end tokens.
    public static let maximumContentLength = contextLength - 2
    /// Merges OpenAI's CLIP uses: 49,408 vocabulary entries - 2 × 256 byte tokens - 2 special tokens.
    public static let clipMergeCount = 48_894

    /// Token text → id. Tokens are spelled with `ByteEncoder` stand-ins ("café" is "cafÃ©"), and
    /// "</w>" marks a word end: "photo</w>" is the word "photo", "photo" the start of a longer word.
    public let vocabulary: [String: Int]
    /// id → token text.
    public let tokenTexts: [String]
    public let bpe: BytePairEncoding
    /// `<|startoftext|>`, 49406 in CLIP.
    public let startID: Int
    /// `<|endoftext|>`, 49407 in CLIP.
    public let endID: Int
    /// The id after the end token up to 77: `<|endoftext|>` again in SD 1.x.
    public let paddingID: Int

    public var vocabularySize: Int { tokenTexts.count }

    // Word → BPE pieces. Prompts repeat the same few thousand words, and BPE is the slow step.
    private var cache: [String: [String]] = [:]
    private let lock = NSLock()

    /// A tokenizer from a vocabulary and its merges.
    ///
    /// - Parameters:
    ///   - vocabulary: token text → id; the ids must be exactly `0..<vocabulary.count`.
    ///   - merges: the merge list, earliest first.
    ///   - paddingToken: the token that fills the ids after the end token.
    ///   - source: where the vocabulary came from, for error messages.
    public init(vocabulary: [String: Int], merges: [BytePairEncoding.Pair],
                paddingToken: String = CLIPPreTokenizer.endOfText, source: String) throws {
        var texts = [String?](repeating: nil, count: vocabulary.count)
        for (text, id) in vocabulary {
            guard texts.indices.contains(id), texts[id] == nil else {
                throw TokenizerError.malformed(source, "ids must be 0..<\(vocabulary.count), each used once; '\(text)' has id \(id)")
            }
            texts[id] = text
        }
        func id(of token: String) throws -> Int {
            guard let id = vocabulary[token] else { throw TokenizerError.missingToken(token, file: source) }
            return id
        }
        self.vocabulary = vocabulary
        self.tokenTexts = texts.map { $0! }   // every slot was filled: count ids, each used once
        self.bpe = BytePairEncoding(merges: merges)
        self.startID = try id(of: CLIPPreTokenizer.startOfText)
        self.endID = try id(of: CLIPPreTokenizer.endOfText)
        self.paddingID = try id(of: paddingToken)
    }

    /// The built-in tokenizer: CLIP's merges, shipped with this package, and the vocabulary
    /// derived from them.
    public convenience init() throws {
        try self.init(mergesFile: Self.builtInMergesFile())
    }

    /// The package resource `bpe_simple_vocab_16e6.txt`: CLIP's merges, with their licence in `NOTICE`.
    public static func builtInMergesFile() throws -> URL {
        guard let folder = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
            throw TokenizerError.missingFile("Resources/bpe_simple_vocab_16e6.txt (package resource)")
        }
        return folder.appendingPathComponent("bpe_simple_vocab_16e6.txt")
    }

    /// A tokenizer from a merges file alone, in OpenAI CLIP's layout (`bpe_simple_vocab_16e6.txt`:
    /// a header line, then one merge `"left right"` per line), with the vocabulary derived the
    /// way CLIP derives it.
    ///
    /// - Parameters:
    ///   - mergeCount: how many merges to use; CLIP uses the first 48,894 (the original file holds
    ///     about 262,000). Nil uses all, and fewer than `mergeCount` is an error.
    ///   - paddingToken: the token that fills the ids after the end token.
    public convenience init(mergesFile: URL, mergeCount: Int? = clipMergeCount,
                            paddingToken: String = CLIPPreTokenizer.endOfText) throws {
        var merges = try Self.readMerges(mergesFile)
        if let mergeCount {
            guard merges.count >= mergeCount else {
                throw TokenizerError.malformed(mergesFile.path, "\(merges.count) merges, expected \(mergeCount)")
            }
            merges = Array(merges.prefix(mergeCount))
        }
        try self.init(merges: merges, paddingToken: paddingToken, source: mergesFile.path)
    }

    /// A tokenizer from a merge list, with the vocabulary derived the way CLIP derives it: the 512
    /// byte tokens, one token per merge, and the two special tokens. A model with a vocabulary of
    /// its own (`BytePairEncoding.learnMerges`) is built this way and saved with `write(to:)`.
    public convenience init(merges: [BytePairEncoding.Pair], paddingToken: String = CLIPPreTokenizer.endOfText,
                            source: String = "the merge list") throws {
        let texts = Self.clipVocabulary(merges: merges)
        var vocabulary: [String: Int] = [:]
        vocabulary.reserveCapacity(texts.count)
        for (id, text) in texts.enumerated() where vocabulary[text] == nil { vocabulary[text] = id }
        guard vocabulary.count == texts.count else {
            throw TokenizerError.malformed(source, "two merges produce the same token")
        }
        try self.init(vocabulary: vocabulary, merges: merges, paddingToken: paddingToken, source: source)
    }

    /// A tokenizer from Hugging Face's files, as in a diffusers model's `tokenizer/` folder:
    /// `vocab.json` (token → id) and `merges.txt` (a `#version` header, then one merge per line).
    public convenience init(vocabularyFile: URL, mergesFile: URL,
                            paddingToken: String = CLIPPreTokenizer.endOfText) throws {
        let data = try Self.read(vocabularyFile)
        let vocabulary: [String: Int]
        do {
            vocabulary = try JSONDecoder().decode([String: Int].self, from: data)
        } catch {
            throw TokenizerError.malformed(vocabularyFile.path, "expected a JSON object of token → id")
        }
        try self.init(vocabulary: vocabulary, merges: Self.readMerges(mergesFile),
                      paddingToken: paddingToken, source: vocabularyFile.path)
    }

    /// The tokenizer of a diffusers model folder: `tokenizer/vocab.json` and `tokenizer/merges.txt`,
    /// or the built-in merges when the folder has neither file (the vocabulary is the same for
    /// every SD 1.x model). Pads with the `pad_token` of `tokenizer/special_tokens_map.json` when
    /// that file names one.
    public convenience init(diffusersFolder folder: URL) throws {
        let tokenizerFolder = folder.appendingPathComponent("tokenizer")
        let vocabularyFile = tokenizerFolder.appendingPathComponent("vocab.json")
        let mergesFile = tokenizerFolder.appendingPathComponent("merges.txt")
        let padding = try Self.paddingToken(tokenizerFolder.appendingPathComponent("special_tokens_map.json"))
            ?? CLIPPreTokenizer.endOfText
        let exists = { (url: URL) in FileManager.default.fileExists(atPath: url.path) }
        if !exists(vocabularyFile) && !exists(mergesFile) {
            try self.init(mergesFile: Self.builtInMergesFile(), paddingToken: padding)
        } else {
            // One file without the other is an error: init(vocabularyFile:mergesFile:) names the missing one.
            try self.init(vocabularyFile: vocabularyFile, mergesFile: mergesFile, paddingToken: padding)
        }
    }

    /// The `pad_token` of a `special_tokens_map.json`: either a plain string or
    /// `{"content": "<|endoftext|>", ...}`. Nil if the file or the entry is absent.
    private static func paddingToken(_ url: URL) throws -> String? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        guard let json = try? JSONSerialization.jsonObject(with: read(url)) as? [String: Any] else {
            throw TokenizerError.malformed(url.path, "expected a JSON object")
        }
        if let plain = json["pad_token"] as? String { return plain }
        if let entry = json["pad_token"] as? [String: Any], let content = entry["content"] as? String { return content }
        return nil
    }

    // MARK: - Tokenizing

    /// The 77 ids of a prompt, with the text of each content token.
    ///
    /// A prompt longer than 75 tokens keeps its first 75; `truncatedCount` says how many were dropped.
    public func tokenize(_ prompt: String) -> TokenizedPrompt {
        let content = encode(prompt)
        let kept = Array(content.prefix(Self.maximumContentLength))
        var ids = [startID] + kept + [endID]
        ids += Array(repeating: paddingID, count: Self.contextLength - ids.count)
        let tokens = kept.map { token(for: $0) ?? PromptToken(id: $0, text: "?", endsWord: true) }
        return TokenizedPrompt(ids: ids, tokens: tokens, truncatedCount: content.count - kept.count)
    }

    /// The content ids of a text: no start or end token, no padding, no length limit.
    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        for piece in CLIPPreTokenizer.pieces(text) {
            switch piece {
            case .special(let token):
                ids.append(token == CLIPPreTokenizer.startOfText ? startID : endID)
            case .word(let word):
                // A piece missing from the vocabulary (only possible with inconsistent files)
                // becomes the unknown token, which for CLIP is <|endoftext|>.
                ids += pieces(of: word).map { vocabulary[$0] ?? endID }
            }
        }
        return ids
    }

    /// The words of `text` that the vocabulary cannot write as one token. In a small vocabulary
    /// learned from a closed list of words (the shapes model's), every word training used is one
    /// token, so these are words the model never saw; CLIP's 49,408 tokens split many ordinary
    /// words, so there the list says little.
    public func wordsWithoutToken(in text: String) -> [String] {
        CLIPPreTokenizer.pieces(text).compactMap { piece in
            guard case .word(let word) = piece, pieces(of: word).count > 1 else { return nil }
            return word
        }
    }

    /// The BPE pieces of one word (lower case, from `CLIPPreTokenizer.words(in:)`), e.g.
    /// "stablediffusion" → ["stable", "dif", "fusion</w>"].
    public func pieces(of word: String) -> [String] {
        lock.lock()
        let cached = cache[word]
        lock.unlock()
        if let cached { return cached }
        let pieces = bpe.encode(ByteEncoder.encode(word))
        lock.lock()
        cache[word] = pieces
        lock.unlock()
        return pieces
    }

    /// The readable text of a token id, or nil if the id is not in the vocabulary.
    public func token(for id: Int) -> PromptToken? {
        guard tokenTexts.indices.contains(id) else { return nil }
        let text = tokenTexts[id]
        if id == startID || id == endID { return PromptToken(id: id, text: text, endsWord: true) }
        let endsWord = text.hasSuffix(BytePairEncoding.endOfWord)
        let body = endsWord ? String(text.dropLast(BytePairEncoding.endOfWord.count)) : text
        guard let bytes = ByteEncoder.decode(body) else { return PromptToken(id: id, text: body, endsWord: endsWord) }
        return PromptToken(id: id, text: Self.readableUTF8(bytes), endsWord: endsWord)
    }

    // MARK: - Files

    /// CLIP's vocabulary, in id order, from its merges (as OpenAI's `SimpleTokenizer` builds it).
    public static func clipVocabulary(merges: [BytePairEncoding.Pair]) -> [String] {
        let bytes = ByteEncoder.vocabularyOrder.map { String($0) }
        return bytes                                              // 0...255
            + bytes.map { $0 + BytePairEncoding.endOfWord }       // 256...511
            + merges.map { $0.left + $0.right }                   // 512...49405
            + [CLIPPreTokenizer.startOfText, CLIPPreTokenizer.endOfText]   // 49406, 49407
    }

    /// Writes the four files of a diffusers `tokenizer/` folder, as Hugging Face's `CLIPTokenizer`
    /// saves them: `vocab.json`, `merges.txt`, `special_tokens_map.json`, `tokenizer_config.json`.
    public func write(to folder: URL) throws {
        let special = { (token: String) in ["content": token, "lstrip": false, "normalized": true, "rstrip": false,
                                           "single_word": false] as [String: Any] }
        let start = special(CLIPPreTokenizer.startOfText), end = special(CLIPPreTokenizer.endOfText)
        let padding = tokenTexts[paddingID]
        let map: [String: Any] = ["bos_token": start, "eos_token": end, "unk_token": end, "pad_token": padding]
        var config = map
        config.merge(["tokenizer_class": "CLIPTokenizer", "model_max_length": Self.contextLength, "do_lower_case": true,
                      "add_prefix_space": false, "errors": "replace"]) { $1 }
        let json = { (object: Any) in try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) }
        let merges = bpe.ranks.sorted { $0.value < $1.value }.map { "\($0.key.left) \($0.key.right)" }
        let files = [("vocab.json", try json(vocabulary)),
                     ("merges.txt", Data((["#version: 0.2"] + merges).joined(separator: "\n").utf8 + [10])),
                     ("special_tokens_map.json", try json(map)), ("tokenizer_config.json", try json(config))]
        for (name, data) in files {
            let url = folder.appendingPathComponent(name)
            do { try FileReplacement.write(data, to: url) } catch {
                throw TokenizerError.unwritable(url.path, error.localizedDescription)
            }
        }
    }

    /// The merges of a merges file: the first line is a header (it contains "#version") and is
    /// skipped; every other non-empty line is `"left right"`.
    public static func readMerges(_ url: URL) throws -> [BytePairEncoding.Pair] {
        guard let text = String(data: try read(url), encoding: .utf8) else {
            throw TokenizerError.malformed(url.path, "not UTF-8 text")
        }
        var merges: [BytePairEncoding.Pair] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if number == 0 && line.contains("#version") { continue }
            if line.isEmpty { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.malformed(url.path, "line \(number + 1) is not a merge \"left right\": '\(line)'")
            }
            merges.append(BytePairEncoding.Pair(String(parts[0]), String(parts[1])))
        }
        return merges
    }

    private static func read(_ url: URL) throws -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else { throw TokenizerError.missingFile(url.path) }
        do {
            return try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadable(url.path, error.localizedDescription)
        }
    }

    /// Bytes as text: whole UTF-8 characters as themselves, stray bytes of a character that is
    /// split over several tokens as `<0xF0>`.
    static func readableUTF8(_ bytes: [UInt8]) -> String {
        var out = ""
        var i = 0
        while i < bytes.count {
            let lead = bytes[i]
            let length = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 0
            if length > 0, i + length <= bytes.count,
               let character = String(validating: bytes[i..<(i + length)], as: UTF8.self) {
                out += character
                i += length
            } else {
                out += "<0x" + String(lead, radix: 16, uppercase: true) + ">"
                i += 1
            }
        }
        return out
    }
}
