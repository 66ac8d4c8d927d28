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
/// and a real generation is watched from inside: which pixels look at which word, at every step,
/// at several guidance scales, and when one word is swapped (`WatchedGeneration.swift`). The
/// model is the shipped shapes model unless `--checkpoint` names another (`none`: tokens and the
/// toy only). The numbers come from `LessonKit`; these files narrate them.
///
/// ```
/// cross-attention                                   # the shapes model; pauses after each stage
/// cross-attention --prompt "a green triangle at the bottom" --swap green=blue --save-maps maps
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
    static let shapesPrompt = "a red circle on the left"
    /// The word swapped in the last stage when --swap is not given, if the prompt has it.
    static let defaultSwaps = ["apple": "pear", "circle": "triangle"]
    static let guidanceScales: [Float] = [1, 3, 7.5, 12]

    @Option(help: """
        Stable Diffusion 1.x checkpoint (.safetensors or diffusers folder; default: $SD_CHECKPOINT, else the shipped \
        shapes model; 'none': tokens and the toy only).
        """)
    var checkpoint: String?

    @Option(help: """
        The prompt, at most 75 tokens (default: '\(CrossAttention.shapesPrompt)' with the shapes model, \
        '\(CrossAttention.defaultPrompt)' otherwise).
        """)
    var prompt: String?

    @Option(help: "One word to swap for the last comparison, as OLD=NEW (default: apple=pear or circle=triangle, if the prompt has it).")
    var swap: String?

    @Option(help: "Sampling steps (1...1000).")
    var steps: Int = 20

    @Option(help: "Seed of the starting noise (the same for every picture of the run).")
    var seed: UInt64 = 42

    @Option(help: "Width in pixels, a multiple of 8, 64...2048 (default: the model's, 512 for SD 1.x and 64 for the shapes model).")
    var width: Int?

    @Option(help: "Height in pixels, a multiple of 8, 64...2048 (default: the model's).")
    var height: Int?

    @Option(help: "Classifier-free guidance scale of the main picture; 1 or less turns guidance off (default 7.5; 3 for the shapes model).")
    var cfg: Float?

    @Option(help: "Folder for the pictures, the animation and the CSV file.")
    var output: String = "output/cross-attention"

    @Option(help: ArgumentHelp("Also write each word's attention map, averaged over heads, layers and steps, as a NumPy .npy file (02-red.npy, ...) into this folder.", valueName: "dir"))
    var saveMaps: String?

    @Flag(help: "Run straight through without waiting for Enter.")
    var noPause = false

    @OptionGroup var kernelsOption: KernelsOption

    mutating func validate() throws {
        if let prompt, prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw ValidationError("--prompt is empty: cross-attention needs words to attend to; try --prompt \"\(Self.shapesPrompt)\"")
        }
        // The model's own size is known only once it is open; 512 stands in for it here.
        let drawing = drawing(model: LessonCheckpoint.model(checkpoint), side: 512)
        do {
            try drawing.request(steps: steps, seed: seed).validate()
        } catch let error as GenerationError {
            throw ValidationError(error.description)
        }
        _ = try parsedSwap(PromptWords.words(drawing.prompt))
    }

    /// The options, with `model`'s defaults where none was given; `side` is the model's picture size.
    func drawing(model: LessonModel?, side: Int) -> LessonDrawing {
        LessonDrawing(model: model, side: side, prompt: prompt, cfg: cfg, width: width, height: height,
                      defaults: (sd: Self.defaultPrompt, shapes: Self.shapesPrompt))
    }

    /// `--swap OLD=NEW` as (index among `words`, old, new), or nil when there is nothing to swap.
    func parsedSwap(_ words: [String]) throws -> (index: Int, old: String, new: String)? {
        guard let swap else {
            for (i, word) in words.enumerated() {
                let core = PromptWords.core(of: word)
                if let new = Self.defaultSwaps[core] { return (i, core, new) }
            }
            return nil
        }
        let parts = swap.split(separator: "=", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, !parts.contains(where: { $0.contains(" ") }) else {
            throw ValidationError("--swap must be OLD=NEW with one word on each side, for example apple=pear; got '\(swap)'")
        }
        guard let index = words.firstIndex(where: { PromptWords.core(of: $0) == parts[0].lowercased() }) else {
            let names = words.map(PromptWords.core(of:)).joined(separator: ", ")
            throw ValidationError("--swap: the prompt has no word '\(parts[0])'; its words are: \(names)")
        }
        return (index, parts[0].lowercased(), parts[1])
    }

    func run() throws {
        let narrator = Narrator(pauses: !noPause)
        narrator.title("Lesson 4 · Cross-attention",
                       subtitle: "softmax(Q K^T / √d) V   — every pixel asks the words, and the words steer the picture")
        // Everything that can fail on the user's input happens before the output folder exists.
        let model = LessonCheckpoint.model(checkpoint)
        let pipeline = try model.map { try LessonCheckpoint.pipeline($0.path) }
        let drawing = drawing(model: model, side: (pipeline?.configuration.unet.sampleSize ?? 64) * 8)
        let prompt = drawing.prompt
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
        let swap = try parsedSwap(PromptWords.words(prompt))
        if tokens.truncatedCount > 0 {
            FileHandle.standardError.write(Data("""
                warning: the prompt is \(tokens.tokens.count + tokens.truncatedCount) tokens long; CLIP reads only the \
                first \(CLIPTokenizer.maximumContentLength), so the last \(tokens.truncatedCount) are ignored

                """.utf8))
        }
        if let saveMaps {
            guard pipeline != nil else {
                throw LessonError("--save-maps needs a model: the maps are recorded inside a real UNet (leave out --checkpoint none to use the shipped shapes model, or pass --checkpoint PATH)")
            }
            try ensureDirectory(saveMaps)
        }
        let out = try LessonOutput(output, parameters: [
            ("lesson", "cross-attention"), ("prompt", prompt), ("seed", "\(seed)"), ("steps", "\(steps)"),
            ("checkpoint", model?.name ?? "none"),
        ])

        if model?.isShapesModel == true { narrator.say(LessonCheckpoint.aboutTheShapesModel) }
        showTokens(tokens, prompt: prompt, tokenizer: tokenizer, narrator: narrator)
        narrator.pause()
        if let pipeline {
            try showEmbedding(tokens, prompt: prompt, pipeline: pipeline, narrator: narrator, out: out)
        } else {
            explainEmbedding(narrator)
        }
        narrator.pause()
        try showToy(narrator: narrator, out: out)
        narrator.pause()
        try showAnatomy(pipeline?.configuration.unet ?? .sd15, latentSide: drawing.height / 8, named: pipeline == nil
                        ? "Stable Diffusion 1.5's" : model?.isShapesModel == true ? "the shapes model's" : "this checkpoint's",
                        narrator: narrator, out: out)
        narrator.pause()

        guard let pipeline else {
            narrator.stage("Done")
            narrator.say("Files written:\n" + out.summary)
            narrator.say("""
                With a checkpoint the lesson goes on: it records the real cross-attention during generation and \
                paints one heatmap per word over the picture.
                """)
            return
        }
        try WatchedGeneration(lesson: self, drawing: drawing, isShapesModel: model?.isShapesModel == true,
                              preview: try pipeline.latentPreview(), pipeline: pipeline, tokens: tokens, swap: swap,
                              narrator: narrator, out: out).run()
    }

    /// Stage 1: the prompt as CLIP's tokens.
    func showTokens(_ tokens: TokenizedPrompt, prompt: String, tokenizer: CLIPTokenizer, narrator: Narrator) {
        narrator.stage("From words to tokens")
        narrator.say("""
            CLIP's tokenizer lower-cases the prompt, splits it into words and punctuation, and cuts rare words into \
            pieces it knows (byte-pair encoding). Each piece has an id in a vocabulary of \(tokenizer.vocabularySize). \
            The text encoder always reads exactly \(CLIPTokenizer.contextLength) ids: a start token, up to \
            \(CLIPTokenizer.maximumContentLength) content tokens, an end token, and the end token again as padding.
            """)
        narrator.show("position     id   token")
        let start = tokenizer.token(for: tokens.ids[0])?.text ?? "<start>"
        narrator.show(String(format: "%8d  %5d   %@   (start)", 0, tokens.ids[0], start))
        for (i, token) in tokens.tokens.enumerated() {
            narrator.show(String(format: "%8d  %5d   %@", i + 1, token.id, token.description))
        }
        let end = tokens.endPosition
        let endText = tokenizer.token(for: tokens.ids[end])?.text ?? "<end>"
        narrator.show(String(format: "%8d  %5d   %@   (end)", end, tokens.ids[end], endText))
        if tokens.paddingCount > 0 {
            narrator.show(String(format: "%3d...%2d  %5d   padding (%d more copies of the end token)",
                                 end + 1, CLIPTokenizer.contextLength - 1, tokens.ids[end + 1], tokens.paddingCount))
        }
        let pieces = tokens.wordPieceCount > 0 ? "; a token shown with a trailing '-' is the first part of a longer word." : "."
        narrator.say("\(PromptWords.words(prompt).count) words became \(tokens.tokens.count) tokens" + pieces)
        let unknown = tokenizer.wordsWithoutToken(in: prompt)
        if tokenizer.vocabularySize < 10_000, !unknown.isEmpty {
            narrator.say("""
                This vocabulary was learned from the model's own captions, so \(unknown.map { "'\($0)'" }.joined(separator: ", ")) fall apart \
                into pieces it never saw in training: the model never learned those words and draws from the rest.
                """)
        }
        if tokens.truncatedCount > 0 {
            let (all, dropped) = PromptWords.droppedTokens(prompt, tokens: tokens, tokenizer: tokenizer)
            narrator.say("""
                Warning: the prompt has \(all) tokens, but only \(CLIPTokenizer.maximumContentLength) fit between the \
                start and end tokens. The model never sees the last \(tokens.truncatedCount): \
                \(dropped.prefix(12).joined(separator: " "))\(dropped.count > 12 ? " ..." : ""). Put what matters \
                first, or shorten the prompt.
                """)
        }
    }

    /// Stage 2, with a checkpoint: the text embedding and the length of each of its vectors.
    func showEmbedding(_ tokens: TokenizedPrompt, prompt: String, pipeline: StableDiffusionPipeline, narrator: Narrator,
                       out: LessonOutput) throws {
        let embedding = try pipeline.encode(prompts: [prompt])                       // (1, 77, D)
        let d = embedding.shape[2]
        narrator.stage("The text embedding (77 x \(d))")
        narrator.say("""
            The text encoder (12 transformer layers in SD 1.x) turns the ids into one vector of \(d) numbers per \
            position. Each vector has read the tokens before it (CLIP looks only backwards), so 'apple' after 'red' \
            is a red apple's vector. These \(CLIPTokenizer.contextLength) x \(d) numbers are everything the UNet \
            knows about the prompt.
            """)
        let lengths = EmbeddingLengths(embedding)
        narrator.show("position   token               length of its vector")
        var rows = [(0, "<start>")] + tokens.tokens.enumerated().map { ($0.offset + 1, $0.element.description) }
        rows.append((tokens.endPosition, "<end>"))
        if tokens.paddingCount > 0 { rows.append((CLIPTokenizer.contextLength - 1, "padding (last)")) }
        for (position, text) in rows {
            narrator.show(String(format: "%8d   %@ %8.2f", position, text.padding(toLength: 18, withPad: " ", startingAt: 0),
                                 lengths.lengths[position]))
        }
        let startRatio = lengths.startRatio(endPosition: tokens.endPosition)
        narrator.say(String(format: "The start token's vector is %.2f times as long as the average of the others. ", startRatio)
                     + (startRatio > 1.5 ? """
            It has read nothing before it, so it is the same for every prompt; the UNet uses it as a resting place \
            for attention, as the next stages show.
            """ : """
            It has read nothing before it, so it is the same for every prompt. SD 1.x's UNet rests most of its \
            attention on it; the next stages show where this model's attention goes instead.
            """) + " The padding vectors are not empty either; they have read the whole prompt.")
        let strip = embeddingPicture(embedding.reshaped([CLIPTokenizer.contextLength, d]), tokens: tokens)
        narrator.show("wrote " + (try out.save(strip, as: "text-embedding.png")))
    }

    /// Stage 2, without a checkpoint: what the embedding is, and how to see it.
    func explainEmbedding(_ narrator: Narrator) {
        narrator.stage("The text embedding (77 x 768)")
        narrator.say("""
            The text encoder turns the 77 ids into 77 vectors of 768 numbers each; the UNet reads those. It needs \
            the model's weights, so this part of the lesson runs with a checkpoint.
            """)
        narrator.say(LessonCheckpoint.howToGetOne)
    }

    /// Stage 4: where attention sits in the UNet, and where the timestep and the text come in.
    func showAnatomy(_ configuration: UNetConfiguration, latentSide: Int, named name: String, narrator: Narrator,
                     out: LessonOutput) throws {
        narrator.stage("Inside the UNet: where the text and the timestep come in")
        let anatomy = UNetAnatomy(configuration: configuration, latentSide: latentSide, batch: 2)
        narrator.say("""
            Before listening in, a map of \(name) UNet (with guidance, a batch of 2). The latents go down \
            \(anatomy.down.count) levels, halving their size and widening their channels, through a middle block, and \
            back up; the outputs of every down block's layers are also handed straight across to the up block at \
            their resolution (the skip connections), so fine detail need not pass through the bottleneck:
            """)
        for block in anatomy.blocks {
            narrator.show(block.name.padded(to: 14) + "\(block.side)x\(block.side)".padded(to: 8)
                          + "\(block.channels) ch".padded(to: 9) + UNetAnatomy.summary(block))
        }
        let plainEnds = anatomy.down.last!.transformers == 0 && anatomy.up.first!.transformers == 0
            ? "; the coarsest blocks of the down and up paths have none, only ResNets" : ""
        let attending = Set(anatomy.blocks.filter { $0.transformers > 0 }.map(\.side)).sorted(by: >).map { "\($0)x\($0)" }
        narrator.say("""
            Each transformer is self-attention (every latent pixel looks at every other), then cross-attention \
            (every pixel looks at the \(anatomy.contextShape[1]) text vectors, width \(anatomy.contextShape[2])), then a \
            feed-forward layer. They sit at \(attending.joined(separator: ", "))\(plainEnds). The timestep enters \
            elsewhere: as \
            \(anatomy.sinusoidWidth) sinusoid features (the picture's heat map, cosines then sines: in each half fast \
            waves on the left, slow ones on the right), turned by two linear layers into \(anatomy.timeEmbeddingWidth) numbers that every ResNet adds \
            to its channels. So every block knows how noisy its input is, and only the transformers know the prompt.
            """)
        narrator.show("wrote " + (try out.save(anatomyPicture(anatomy), as: "unet-anatomy.png")))
    }

    /// Stage 3: attention by hand on a 16x16 toy.
    func showToy(narrator: Narrator, out: LessonOutput) throws {
        narrator.stage("Attention by hand: a 16x16 toy")
        narrator.say("""
            Inside the UNet, every pixel of the latent is a query Q, and every one of the 77 text vectors is a key K \
            and a value V. The pixel compares its query with each key (a dot product), softmax turns the scores into \
            shares that add up to 1, and the pixel takes home that mix of the values. Here is the same arithmetic \
            with 4 regions, 3 words and a start token, in 4 dimensions:
            """)
        narrator.show("region   query q          word      key k           value v (R, G, B)")
        for i in 0..<4 {
            narrator.show(ToyAttention.regions[i].padded(to: 9) + vector(ToyAttention.regionQueries[i], format: "%.0f").padded(to: 17)
                          + ToyAttention.words[i].padded(to: 10) + vector(ToyAttention.wordKeys[i], format: "%.0f").padded(to: 16)
                          + vector(ToyAttention.wordValues[i], format: "%+.1f"))
        }
        let (scores, p, result) = ToyAttention.byHand()
        table("scores Q K^T / sqrt(4)", scores, narrator: narrator)
        table("softmax: each row adds up to 1", p, narrator: narrator)
        narrator.say(String(format: """
            A sky pixel gives e^2 / (e^1 + e^2 + e^0 + e^0) = %.2f of its attention to "sky", %.2f to <start> and \
            %.2f to each of the others. The house has no word: its scores are 1, 0, 0, 0, so <start> gets %.2f and \
            every word %.2f.
            """, p[0, 1], p[0, 0], p[0, 2], p[3, 0], p[3, 1]))
        narrator.show("output = softmax x V     R      G      B")
        for i in 0..<4 {
            narrator.show(ToyAttention.regions[i].padded(to: 20)
                          + String(format: "%+.2f  %+.2f  %+.2f", result[i, 0], result[i, 1], result[i, 2]))
        }
        narrator.say(String(format: """
            The sky comes out blue, the sun yellow, and the grass green: each word painted the region that asked for \
            it. The house, with no word of its own, gets a dull mix of all three. Running all 256 pixels through \
            scaledDotProductAttention, the function every attention layer of the UNet calls, gives the same numbers \
            (largest difference on a sky pixel: %.1e); the %d pixels on a border mix their regions' queries, and so \
            their words.
            """, ToyAttention.wholePictureDifference(), ToyAttention.borderPixelCount))
        narrator.say("""
            In the real model the sizes are larger (4096 pixel queries at 64x64, 77 tokens, 8 heads of 40 to 160 \
            numbers, 16 such layers), and the meaning of each dimension is learned, but the arithmetic is exactly \
            this. Read it as plain loops in Reference.scaledDotProductAttention \
            (Sources/TensorCore/Reference/Reference+Attention.swift); the model normally runs its fast twin \
            (Sources/TensorCore/Fast/Fast+Attention.swift), which gives the same numbers sooner, and \
            --kernels reference runs this whole lesson on the plain loops.
            """)
        narrator.show("wrote " + (try out.save(toyPicture(), as: "toy-attention.png")))
    }
}
