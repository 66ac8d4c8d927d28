import Foundation
import Testing
import StableDiffusion

// The tokenizer is checked against transformers' CLIPTokenizer (what diffusers uses) with exact
// equality: token ids are integers, so there is no tolerance.

private func tokenizerFixtureURL(_ path: String) -> URL {
    Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent(path)
}

/// `reference/tokens.json`: transformers' ids for tricky prompts.
private struct TokenReference: Decodable {
    struct Prompt: Decodable {
        let name: String
        let prompt: String
        let ids: [Int]
        let length: Int
        let tokens: [String]
        let truncated_from: Int?
        let open_clip_ids: [Int]?
    }
    let prompts: [Prompt]

    static let shared: TokenReference = {
        let data = try! Data(contentsOf: tokenizerFixtureURL("reference/tokens.json"))
        return try! JSONDecoder().decode(TokenReference.self, from: data)
    }()

    static func prompt(_ name: String) -> Prompt { shared.prompts.first { $0.name == name }! }
}

/// Loading the 48,894 merges takes a few tenths of a second; the tests share one tokenizer.
private let builtInTokenizer = try! CLIPTokenizer()

@Suite("CLIP tokenizer")
struct TokenizerTests {
    static let promptNames = ["plain", "capitals_punctuation", "numbers", "apostrophes", "curly_apostrophes",
                              "accents", "accents_decomposed", "emoji", "cjk", "whitespace", "symbols",
                              "html_entity", "empty", "long"]

    @Test("ids equal transformers' CLIPTokenizer for every reference prompt", arguments: promptNames)
    func matchesTransformers(name: String) {
        let reference = TokenReference.prompt(name)
        let prompt = builtInTokenizer.tokenize(reference.prompt)
        #expect(prompt.ids == reference.ids)
        #expect(prompt.ids.count == 77)
        #expect(prompt.endPosition == reference.length - 1)
        // The vocabulary entries behind the ids, spelled as transformers spells them.
        #expect(reference.ids.prefix(reference.length).map { builtInTokenizer.tokenTexts[$0] } == reference.tokens)
    }

    @Test("the reference prompts cover every list the reference has")
    func coversReference() {
        #expect(Set(TokenReference.shared.prompts.map(\.name)) == Set(Self.promptNames))
    }

    @Test("where OpenAI's tokenizer differs (ftfy, HTML entities), the ids follow transformers")
    func followsTransformersNotOpenCLIP() {
        let different = TokenReference.shared.prompts.filter { $0.open_clip_ids != nil }
        #expect(!different.isEmpty)
        for reference in different {
            let ids = builtInTokenizer.tokenize(reference.prompt).ids
            #expect(ids == reference.ids && ids != reference.open_clip_ids, "\(reference.name)")
        }
    }

    @Test("a prompt over 75 tokens keeps its first 75 and reports how many it dropped")
    func truncation() {
        let reference = TokenReference.prompt("long")
        let prompt = builtInTokenizer.tokenize(reference.prompt)
        let all = builtInTokenizer.encode(reference.prompt)
        #expect(all.count == reference.truncated_from! - 2)      // truncated_from counts start and end
        #expect(prompt.truncatedCount == all.count - 75)
        #expect(prompt.truncatedCount == 9)
        #expect(prompt.tokens.count == 75 && prompt.tokens.map(\.id) == Array(all.prefix(75)))
        #expect(prompt.ids.last == 49407 && prompt.paddingCount == 0)

        let exactly75 = String(repeating: "cat ", count: 75)
        #expect(builtInTokenizer.tokenize(exactly75).truncatedCount == 0)
        #expect(builtInTokenizer.tokenize(exactly75 + "dog").truncatedCount == 1)
    }

    @Test("an empty prompt is start, end and 75 padding ids")
    func emptyPrompt() {
        let prompt = builtInTokenizer.tokenize("")
        #expect(prompt.ids == [49406] + [Int](repeating: 49407, count: 76))
        #expect(prompt.tokens.isEmpty && prompt.truncatedCount == 0 && prompt.paddingCount == 75)
    }

    @Test("tokens read as text: word ends, rare words in pieces, split characters as bytes")
    func readableTokens() {
        let tokens = builtInTokenizer.tokenize("A photograph, stablediffusion 東京").tokens
        #expect(tokens.map(\.text) == ["a", "photograph", ",", "stable", "dif", "fusion", "東", "<0xE4><0xBA>", "<0xAC>"])
        #expect(tokens.map(\.endsWord) == [true, true, true, false, false, true, false, false, true])
        #expect(tokens.map(\.description) == ["a", "photograph", ",", "stable-", "dif-", "fusion",
                                              "東-", "<0xE4><0xBA>-", "<0xAC>"])
        #expect(tokens.map(\.id) == [320, 8853, 267, 44427, 18656, 9364, 48338, 21078, 361])
        #expect(builtInTokenizer.token(for: 49406)?.text == "<|startoftext|>")
        #expect(builtInTokenizer.token(for: 22979)?.text == "🐱")
        #expect(builtInTokenizer.token(for: 49408) == nil && builtInTokenizer.token(for: -1) == nil)
    }

    @Test("special tokens written exactly so in the text become their ids; other spellings do not")
    func specialTokensInText() {
        #expect(builtInTokenizer.encode("a<|endoftext|>b") == [320, 49407, 321])
        #expect(builtInTokenizer.encode("<|startoftext|>") == [49406])
        // Upper case is not the special token: "<|", "endoftext", "|>" as ordinary words.
        #expect(builtInTokenizer.encode("<|ENDOFTEXT|>") == [27, 347, 40786, 4160, 91, 285])
    }

    @Test("the vocabulary is CLIP's: 49,408 entries in SimpleTokenizer's order")
    func vocabularyLayout() {
        #expect(builtInTokenizer.vocabularySize == 49408)
        #expect(builtInTokenizer.tokenTexts[0] == "!" && builtInTokenizer.tokenTexts[255] == "Ń")   // last non-printable byte, 173 → U+0143
        #expect(builtInTokenizer.tokenTexts[256] == "!</w>" && builtInTokenizer.tokenTexts[512] == "in")   // first merge: "i n"
        #expect(builtInTokenizer.tokenTexts[49405] == "jekyll</w>")   // last merge: "jeky ll</w>"
        #expect(builtInTokenizer.startID == 49406 && builtInTokenizer.endID == 49407 && builtInTokenizer.paddingID == 49407)
        #expect(builtInTokenizer.bpe.ranks.count == CLIPTokenizer.clipMergeCount)
    }
}

@Suite("CLIP text splitting")
struct PreTokenizerTests {
    @Test("CLIP's pattern: letter runs, single digits, symbol runs, contraction endings")
    func words() {
        #expect(CLIPPreTokenizer.words(in: "Hello,   WORLD!!") == ["hello", ",", "world", "!!"])
        #expect(CLIPPreTokenizer.words(in: "1024x768") == ["1", "0", "2", "4", "x", "7", "6", "8"])
        #expect(CLIPPreTokenizer.words(in: "it's THEY'RE") == ["it", "'s", "they", "'re"])
        #expect(CLIPPreTokenizer.words(in: "'dog ''s") == ["'d", "og", "''", "s"])
        #expect(CLIPPreTokenizer.words(in: "(masterpiece:1.2)") == ["(", "masterpiece", ":", "1", ".", "2", ")"])
        #expect(CLIPPreTokenizer.words(in: " \t\n\u{00A0}\u{3000} ").isEmpty)
    }

    @Test("normal form C, then lower case one character at a time")
    func normalization() {
        // "e" + combining acute becomes the single "é".
        #expect(CLIPPreTokenizer.words(in: "CAFE\u{301}").map { Array($0.unicodeScalars) } == [["c", "a", "f", "\u{E9}"]])
        // No final-sigma rule: the last "Σ" becomes "σ", as in the Rust tokenizer (Python's lower() gives "ς").
        #expect(CLIPPreTokenizer.words(in: "ΟΔΟΣ") == ["οδοσ"])
        // "İ" lower-cases to "i" + combining dot above, which is not a letter: two words.
        #expect(CLIPPreTokenizer.words(in: "İ").map { Array($0.unicodeScalars) } == [["i"], ["\u{307}"]])
    }

    @Test("special tokens are cut out before anything else")
    func pieces() {
        #expect(CLIPPreTokenizer.pieces("A<|endoftext|>b c") == [.word("a"), .special("<|endoftext|>"), .word("b"), .word("c")])
        #expect(CLIPPreTokenizer.pieces("<|EndOfText|>") == [.word("<|"), .word("endoftext"), .word("|>")])
    }
}

@Suite("Byte-level BPE")
struct BytePairEncodingTests {
    @Test("every byte has its own printable stand-in, and the map is reversible")
    func byteEncoder() {
        #expect(Set(ByteEncoder.characters).count == 256)
        #expect(ByteEncoder.characters[32] == "Ġ" && ByteEncoder.characters[10] == "Ċ" && ByteEncoder.characters[65] == "A")
        #expect(ByteEncoder.vocabularyOrder.count == 256 && ByteEncoder.vocabularyOrder.first == "!")
        let text = "café 🐱 東京\n"
        #expect(ByteEncoder.encode("café") == "cafÃ©")
        #expect(ByteEncoder.decode(ByteEncoder.encode(text)) == Array(text.utf8))
        #expect(ByteEncoder.decode("\u{4E00}") == nil)   // not a stand-in character
    }

    @Test("merges apply lowest rank first, every occurrence left to right")
    func toyMerges() {
        let bpe = BytePairEncoding(merges: [.init("a", "a"), .init("b", "c</w>"), .init("aa", "bc</w>")])
        #expect(bpe.encode("aaa") == ["aa", "a</w>"])
        #expect(bpe.encode("aabc") == ["aabc</w>"])
        #expect(bpe.encode("abc") == ["a", "bc</w>"])
        #expect(bpe.encode("x") == ["x</w>"])
        #expect(bpe.encode("") == [])
    }

    @Test("CLIP's merges turn a common word into one token and a rare one into pieces")
    func clipMerges() {
        #expect(builtInTokenizer.bpe.encode("photo") == ["photo</w>"])
        #expect(builtInTokenizer.bpe.encode("stablediffusion") == ["stable", "dif", "fusion</w>"])
        #expect(builtInTokenizer.pieces(of: "astronaut") == ["astronaut</w>"])
    }
}

@Suite("Tokenizer files")
struct TokenizerFileTests {
    /// A scratch folder with `tokenizer/vocab.json` and `tokenizer/merges.txt` in Hugging Face's
    /// layout, written from the built-in tokenizer.
    private func writeHuggingFaceFiles(padding: String? = nil) throws -> URL {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("tokenizer-test-\(UUID().uuidString)")
        let tokenizerFolder = folder.appendingPathComponent("tokenizer")
        try FileManager.default.createDirectory(at: tokenizerFolder, withIntermediateDirectories: true)
        try JSONEncoder().encode(builtInTokenizer.vocabulary).write(to: tokenizerFolder.appendingPathComponent("vocab.json"))
        let merges = builtInTokenizer.bpe.ranks.sorted { $0.value < $1.value }.map { "\($0.key.left) \($0.key.right)" }
        try ("#version: 0.2\n" + merges.joined(separator: "\n") + "\n")
            .write(to: tokenizerFolder.appendingPathComponent("merges.txt"), atomically: false, encoding: .utf8)
        if let padding {
            try "{\"pad_token\": {\"content\": \"\(padding)\"}}"
                .write(to: tokenizerFolder.appendingPathComponent("special_tokens_map.json"), atomically: false, encoding: .utf8)
        }
        return folder
    }

    @Test("vocab.json + merges.txt give the same ids as the built-in merges")
    func huggingFaceFiles() throws {
        let folder = try writeHuggingFaceFiles()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tokenizer = try CLIPTokenizer(diffusersFolder: folder)
        #expect(tokenizer.vocabulary == builtInTokenizer.vocabulary)
        for reference in TokenReference.shared.prompts {
            #expect(tokenizer.tokenize(reference.prompt).ids == reference.ids, "\(reference.name)")
        }
    }

    @Test("special_tokens_map.json chooses the padding token")
    func paddingFromSpecialTokens() throws {
        let folder = try writeHuggingFaceFiles(padding: "!")   // SD 2.x pads with "!" (id 0)
        defer { try? FileManager.default.removeItem(at: folder) }
        let ids = try CLIPTokenizer(diffusersFolder: folder).tokenize("a cat").ids
        #expect(ids.prefix(5) == [49406, 320, 2368, 49407, 0] && ids.last == 0)
    }

    @Test("a diffusers folder without vocab.json and merges.txt uses the built-in merges")
    func folderWithoutVocabulary() throws {
        let tokenizer = try CLIPTokenizer(diffusersFolder: tokenizerFixtureURL("tiny/diffusers"))
        #expect(tokenizer.tokenize(TokenReference.prompt("plain").prompt).ids == TokenReference.prompt("plain").ids)
    }

    @Test("missing, malformed and incomplete files are errors that name the file")
    func errors() throws {
        let folder = try writeHuggingFaceFiles()
        defer { try? FileManager.default.removeItem(at: folder) }
        let vocabulary = folder.appendingPathComponent("tokenizer/vocab.json")
        let merges = folder.appendingPathComponent("tokenizer/merges.txt")
        let missing = folder.appendingPathComponent("tokenizer/nothing.txt")

        #expect(throws: TokenizerError.missingFile(missing.path)) {
            try CLIPTokenizer(vocabularyFile: missing, mergesFile: merges)
        }
        // Only one of the two files in a diffusers folder.
        try FileManager.default.removeItem(at: merges)
        #expect(throws: TokenizerError.missingFile(merges.path)) { try CLIPTokenizer(diffusersFolder: folder) }

        try "#version: 0.2\ni n\nthis line has three\n".write(to: merges, atomically: false, encoding: .utf8)
        #expect(throws: TokenizerError.malformed(merges.path, "line 3 is not a merge \"left right\": 'this line has three'")) {
            try CLIPTokenizer(vocabularyFile: vocabulary, mergesFile: merges)
        }

        try "i n\n".write(to: merges, atomically: false, encoding: .utf8)
        #expect(throws: TokenizerError.malformed(merges.path, "1 merges, expected 48894")) {
            try CLIPTokenizer(mergesFile: merges)
        }
        try "{\"a\": 0, \"<|startoftext|>\": 1}".write(to: vocabulary, atomically: false, encoding: .utf8)
        #expect(throws: TokenizerError.missingToken("<|endoftext|>", file: vocabulary.path)) {
            try CLIPTokenizer(vocabularyFile: vocabulary, mergesFile: merges)
        }
        try "{\"a\": 0, \"b\": 5}".write(to: vocabulary, atomically: false, encoding: .utf8)
        #expect(throws: TokenizerError.self) { try CLIPTokenizer(vocabularyFile: vocabulary, mergesFile: merges) }
        try "[1, 2, 3]".write(to: vocabulary, atomically: false, encoding: .utf8)
        #expect(throws: TokenizerError.malformed(vocabulary.path, "expected a JSON object of token → id")) {
            try CLIPTokenizer(vocabularyFile: vocabulary, mergesFile: merges)
        }
    }
}
