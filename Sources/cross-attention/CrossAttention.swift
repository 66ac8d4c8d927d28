import ArgumentParser
import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// Lesson 4: cross-attention, the place where the prompt's words steer the picture.
///
/// Reads top to bottom like the lesson (`Lessons/04-cross-attention.md`): the prompt becomes
/// tokens, the tokens become a 77x768 embedding, a toy shows `softmax(Q Kᵀ / √d) V` by hand,
/// and, with a checkpoint, a real generation is watched from inside: which pixels look at which
/// word, at every step, at several guidance scales, and when one word is swapped.
///
/// ```
/// cross-attention                                   # tokens and the toy; pauses after each stage
/// cross-attention --checkpoint v1-5-pruned-emaonly.safetensors --prompt "a red apple on a wooden table"
/// cross-attention --no-pause --prompt "a cat on a sofa" --swap cat=dog --steps 15 --seed 7
/// ```
@main
struct CrossAttention: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cross-attention",
        abstract: "Lesson 4: see which pixels listen to which word of the prompt.",
        discussion: "The lesson text is in Lessons/04-cross-attention.md.")

    static let defaultPrompt = "a red apple on a wooden table"
    static let guidanceScales: [Float] = [1, 3, 7.5, 12]

    @Option(help: "Stable Diffusion 1.x checkpoint (.safetensors or diffusers folder; default: $SD_CHECKPOINT, else none).")
    var checkpoint: String?

    @Option(help: "The prompt (at most 75 tokens are read).")
    var prompt: String = CrossAttention.defaultPrompt

    @Option(help: "One word to swap for the last comparison, as OLD=NEW (default: apple=pear when the prompt has 'apple').")
    var swap: String?

    @Option(help: "Sampling steps (1...1000).")
    var steps: Int = 20

    @Option(help: "Seed of the starting noise (the same for every picture of the run).")
    var seed: UInt64 = 42

    @Option(help: "Width in pixels, a multiple of 8 (64...2048).")
    var width: Int = 512

    @Option(help: "Height in pixels, a multiple of 8 (64...2048).")
    var height: Int = 512

    @Option(help: "Classifier-free guidance scale of the main picture; 1 or less turns guidance off.")
    var cfg: Float = 7.5

    @Option(help: "Folder for the pictures, the animation and the CSV file.")
    var output: String = "output/cross-attention"

    @Flag(help: "Run straight through without waiting for Enter.")
    var noPause = false

    mutating func validate() throws {
        guard !prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ValidationError("--prompt is empty: cross-attention needs words to attend to; try --prompt \"\(Self.defaultPrompt)\"")
        }
        do {
            try request(prompt: prompt, cfg: cfg).validate()
        } catch let error as GenerationError {
            throw ValidationError(error.description)
        }
        _ = try parsedSwap()
    }

    /// The generation settings shared by every picture of the run.
    func request(prompt: String, cfg: Float) -> GenerationRequest {
        GenerationRequest(prompt: prompt, steps: steps, guidanceScale: cfg, seed: seed, width: width, height: height)
    }

    /// `--swap OLD=NEW` as (word index in the prompt, old, new), or nil when there is nothing to swap.
    func parsedSwap() throws -> (index: Int, old: String, new: String)? {
        let words = promptWords
        guard let swap else {
            return words.firstIndex { Self.core(of: $0) == "apple" }.map { ($0, "apple", "pear") }
        }
        let parts = swap.split(separator: "=", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, !parts.contains(where: { $0.contains(" ") }) else {
            throw ValidationError("--swap must be OLD=NEW with one word on each side, for example apple=pear; got '\(swap)'")
        }
        guard let index = words.firstIndex(where: { Self.core(of: $0) == parts[0].lowercased() }) else {
            throw ValidationError("--swap: the prompt has no word '\(parts[0])'; its words are: \(words.map { Self.core(of: $0) }.joined(separator: ", "))")
        }
        return (index, parts[0].lowercased(), parts[1])
    }

    var promptWords: [String] { prompt.split(whereSeparator: \.isWhitespace).map(String.init) }

    /// A word without the punctuation around it, lower-cased: "Apple," → "apple".
    static func core(of word: String) -> String {
        word.trimmingCharacters(in: .punctuationCharacters.union(.symbols)).lowercased()
    }

    func run() throws {
        let narrator = Narrator(pauses: !noPause)
        narrator.title("Lesson 4 · Cross-attention",
                       subtitle: "softmax(Q K^T / √d) V   — every pixel asks the words, and the words steer the picture")
        // Everything that can fail on the user's input happens before the output folder exists.
        let checkpointPath = LessonCheckpoint.path(checkpoint)
        let pipeline = try checkpointPath.map { try LessonCheckpoint.pipeline($0) }
        if let pipeline {
            // Build the three networks now, so a damaged checkpoint stops the lesson here.
            do {
                _ = try pipeline.loadTextEncoder()
                _ = try pipeline.unet()
                _ = try pipeline.vae()
            } catch {
                throw LessonError("cannot use checkpoint: \(error)")
            }
        }
        let tokenizer = try pipeline?.tokenizer() ?? CLIPTokenizer()
        let tokens = tokenizer.tokenize(prompt)
        guard !tokens.tokens.isEmpty else { throw LessonError("--prompt '\(prompt)' has no tokens") }
        let swap = try parsedSwap()
        if tokens.truncatedCount > 0 {
            FileHandle.standardError.write(Data("warning: the prompt is \(tokens.tokens.count + tokens.truncatedCount) tokens long; CLIP reads only the first \(CLIPTokenizer.maximumContentLength), so the last \(tokens.truncatedCount) are ignored\n".utf8))
        }
        let out = try LessonOutput(output, parameters: [
            ("lesson", "cross-attention"), ("prompt", prompt), ("seed", "\(seed)"), ("steps", "\(steps)"),
        ])

        showTokens(tokens, tokenizer: tokenizer, narrator: narrator)
        narrator.pause()

        if let pipeline {
            try showEmbedding(tokens, pipeline: pipeline, narrator: narrator, out: out)
        } else {
            narrator.stage("The text embedding (77 x 768)")
            narrator.say("The text encoder turns the 77 ids into 77 vectors of 768 numbers each; the UNet reads those. It needs the model's weights, so this part of the lesson runs with a checkpoint.")
            narrator.say(LessonCheckpoint.howToGetOne)
        }
        narrator.pause()

        try showToy(narrator: narrator, out: out)
        narrator.pause()

        guard let pipeline else {
            narrator.stage("Done")
            narrator.say("Files written:\n" + out.summary)
            narrator.say("With a checkpoint the lesson goes on: it records the real cross-attention during generation and paints one heatmap per word over the picture.")
            return
        }
        try WatchedGeneration(lesson: self, pipeline: pipeline, tokens: tokens, swap: swap,
                              narrator: narrator, out: out).run()
    }

    // MARK: Stage 1 — tokens

    func showTokens(_ tokens: TokenizedPrompt, tokenizer: CLIPTokenizer, narrator: Narrator) {
        narrator.stage("From words to tokens")
        narrator.say("CLIP's tokenizer lower-cases the prompt, splits it into words and punctuation, and cuts rare words into pieces it knows (byte-pair encoding). Each piece has an id in a vocabulary of \(tokenizer.vocabularySize). The text encoder always reads exactly \(CLIPTokenizer.contextLength) ids: a start token, up to \(CLIPTokenizer.maximumContentLength) content tokens, an end token, and the end token again as padding.")
        narrator.show("position     id   token")
        let start = tokenizer.token(for: tokens.ids[0])?.text ?? "<start>"
        narrator.show(String(format: "%8d  %5d   %@   (start)", 0, tokens.ids[0], start))
        for (i, token) in tokens.tokens.enumerated() {
            narrator.show(String(format: "%8d  %5d   %@", i + 1, token.id, token.description))
        }
        let end = tokens.endPosition
        narrator.show(String(format: "%8d  %5d   %@   (end)", end, tokens.ids[end], tokenizer.token(for: tokens.ids[end])?.text ?? "<end>"))
        if tokens.paddingCount > 0 {
            narrator.show(String(format: "%3d...%2d  %5d   padding (%d more copies of the end token)",
                                 end + 1, CLIPTokenizer.contextLength - 1, tokens.ids[end + 1], tokens.paddingCount))
        }
        let pieces = tokens.tokens.filter { !$0.endsWord }.count
        narrator.say("\(promptWords.count) words became \(tokens.tokens.count) tokens" + (pieces > 0 ? "; a token shown with a trailing '-' is the first part of a longer word." : "."))
        if tokens.truncatedCount > 0 {
            let all = tokenizer.encode(prompt)
            let dropped = all.suffix(tokens.truncatedCount).compactMap { tokenizer.token(for: $0)?.description }
            narrator.say("Warning: the prompt has \(all.count) tokens, but only \(CLIPTokenizer.maximumContentLength) fit between the start and end tokens. The model never sees the last \(tokens.truncatedCount): \(dropped.prefix(12).joined(separator: " "))\(dropped.count > 12 ? " ..." : ""). Put what matters first, or shorten the prompt.")
        }
    }

    // MARK: Stage 2 — the embedding

    func showEmbedding(_ tokens: TokenizedPrompt, pipeline: StableDiffusionPipeline, narrator: Narrator,
                       out: LessonOutput) throws {
        let embedding = try pipeline.encode(prompts: [prompt])                       // (1, 77, D)
        let d = embedding.shape[2]
        narrator.stage("The text embedding (77 x \(d))")
        narrator.say("The text encoder (12 transformer layers in SD 1.x) turns the ids into one vector of \(d) numbers per position. Each vector has read the tokens before it (CLIP looks only backwards), so 'apple' after 'red' is a red apple's vector. These \(CLIPTokenizer.contextLength) x \(d) numbers are everything the UNet knows about the prompt.")
        func norm(_ position: Int) -> Float {
            let row = embedding.scalars[(position * d)..<((position + 1) * d)]
            return row.reduce(0) { $0 + $1 * $1 }.squareRoot()
        }
        narrator.show("position   token               length of its vector")
        var rows = [(0, "<start>")] + tokens.tokens.enumerated().map { ($0.offset + 1, $0.element.description) }
        rows.append((tokens.endPosition, "<end>"))
        if tokens.paddingCount > 0 { rows.append((CLIPTokenizer.contextLength - 1, "padding (last)")) }
        for (position, text) in rows {
            narrator.show(String(format: "%8d   %@ %8.2f", position,
                                 text.padding(toLength: 18, withPad: " ", startingAt: 0), norm(position)))
        }
        let others = (1...tokens.endPosition).map(norm)
        let ratio = norm(0) / (others.reduce(0, +) / Float(others.count))
        narrator.say(String(format: "The start token's vector is %.2f times as long as the average of the others. ", ratio)
                     + "It has read nothing before it, so it is the same for every prompt; the UNet uses it as a resting place for attention, as the next stages show."
                     + " The padding vectors are not empty either; they have read the whole prompt.")
        let strip = embeddingPicture(embedding.reshaped([CLIPTokenizer.contextLength, d]), tokens: tokens)
        narrator.show("wrote " + (try out.save(strip, as: "text-embedding.png")))
    }

    /// The `(77, D)` embedding as a heat strip, one band per token, with the bands named on the left.
    func embeddingPicture(_ embedding: Tensor, tokens: TokenizedPrompt) -> RGBImage {
        let rowHeight = 6, margin = 120, d = embedding.shape[1]
        let strip = RGBImage(heatmap: embedding, colorMap: .viridis, range: -2...2)
            .resized(width: max(d, 768), height: CLIPTokenizer.contextLength * rowHeight, filter: .nearest)
        var picture = RGBImage(width: margin + strip.width, height: strip.height + 8, color: RGBColor(hex: 0x1B1B1F))
        picture.paste(strip, x: margin, y: 4)
        // Each group of rows gets a bracket and a name, placed top to bottom without overlapping.
        let font = BitmapFont(.small)
        let groups = [("start", 0..<1), ("\(tokens.tokens.count) tokens", 1..<tokens.endPosition),
                      ("end", tokens.endPosition..<(tokens.endPosition + 1)),
                      ("padding", (tokens.endPosition + 1)..<CLIPTokenizer.contextLength)].filter { !$0.1.isEmpty }
        var free = 0
        for (name, rows) in groups {
            let top = 4 + rows.lowerBound * rowHeight, bottom = 4 + rows.upperBound * rowHeight
            picture.fillRectangle(x: margin - 6, y: top + 1, width: 3, height: max(1, bottom - top - 2), color: RGBColor(hex: 0xF2F2F2))
            let y = max(free, (top + bottom) / 2 - font.characterHeight / 2)
            picture.drawText(name, x: margin - 10 - font.width(of: name), y: y, font: font, color: RGBColor(hex: 0xF2F2F2))
            free = y + font.lineHeight
        }
        return picture.captioned("the text embedding: \(CLIPTokenizer.contextLength) rows (one per token) x \(d) numbers; colour -2 (purple) to +2 (yellow)")
    }

    // MARK: Stage 3 — the toy

    func showToy(narrator: Narrator, out: LessonOutput) throws {
        narrator.stage("Attention by hand: a 16x16 toy")
        narrator.say("Inside the UNet, every pixel of the latent is a query Q, and every one of the 77 text vectors is a key K and a value V. The pixel compares its query with each key (a dot product), softmax turns the scores into shares that add up to 1, and the pixel takes home that mix of the values. Here is the same arithmetic with 4 regions, 3 words and a start token, in 4 dimensions:")
        narrator.show("region   query q          word      key k           value v (R, G, B)")
        for i in 0..<4 {
            narrator.show(pad(ToyAttention.regions[i], 9) + pad(vector(ToyAttention.regionQueries[i], format: "%.0f"), 17)
                          + pad(ToyAttention.words[i], 10) + pad(vector(ToyAttention.wordKeys[i], format: "%.0f"), 16)
                          + vector(ToyAttention.wordValues[i], format: "%+.1f"))
        }
        let (scores, probabilities, result) = ToyAttention.byHand()
        table("scores Q K^T / sqrt(4)", scores, narrator: narrator)
        table("softmax: each row adds up to 1", probabilities, narrator: narrator)
        narrator.say(String(format: "A sky pixel gives e^2 / (e^1 + e^2 + e^0 + e^0) = %.2f of its attention to \"sky\", %.2f to <start> and %.2f to each of the others. The house has no word: its scores are 1, 0, 0, 0, so <start> gets %.2f and every word %.2f.", probabilities[0, 1], probabilities[0, 0], probabilities[0, 2], probabilities[3, 0], probabilities[3, 1]))
        narrator.show("output = softmax x V     R      G      B")
        for i in 0..<4 {
            narrator.show(pad(ToyAttention.regions[i], 20) + String(format: "%+.2f  %+.2f  %+.2f", result[i, 0], result[i, 1], result[i, 2]))
        }
        // The top-left pixel is pure sky: the full-size function must agree with the table.
        let whole = ToyAttention.wholePicture().output                        // (1, 256, 3)
        let difference = (0..<3).map { abs(whole[0, 0, $0] - result[0, $0]) }.max()!
        let borders = ToyAttention.coverage().filter { $0.max()! < 1 }.count
        narrator.say(String(format: "The sky comes out blue, the sun yellow, and the grass green: each word painted the region that asked for it. The house, with no word of its own, gets a dull mix of all three. Running all 256 pixels through scaledDotProductAttention, the function every attention layer of the UNet calls, gives the same numbers (largest difference on a sky pixel: %.1e); the %d pixels on a border mix their regions' queries, and so their words.", difference, borders))
        narrator.say("In the real model the sizes are larger (4096 pixel queries at 64x64, 77 tokens, 8 heads of 40 to 160 numbers, 16 such layers), and the meaning of each dimension is learned, but the arithmetic is exactly this.")
        narrator.show("wrote " + (try out.save(ToyAttention.picture(), as: "toy-attention.png")))
    }

    /// `text` padded with spaces to `width` characters.
    func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count + 1), withPad: " ", startingAt: 0) }

    func vector(_ values: [Float], format: String) -> String {
        "(" + values.map { String(format: format, $0) }.joined(separator: ", ") + ")"
    }

    /// A (regions, words) matrix with labels.
    func table(_ title: String, _ matrix: Tensor, narrator: Narrator) {
        narrator.show(title)
        narrator.show(pad("", 9) + ToyAttention.words.map { pad($0, 9) }.joined())
        for i in 0..<matrix.shape[0] {
            narrator.show(pad(ToyAttention.regions[i], 9) + (0..<matrix.shape[1]).map { String(format: "%-9.2f", matrix[i, $0]) }.joined())
        }
    }
}
