import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// The lesson's second half, with a checkpoint: real generations, watched from inside the UNet's
/// cross-attention layers. The numbers come from `AttentionMaps` (LessonKit); the pictures are
/// drawn in `WatchedGeneration+Pictures.swift`.
struct WatchedGeneration {
    let lesson: CrossAttention
    /// The prompt, guidance and size, the model's defaults filled in.
    let drawing: LessonDrawing
    let isShapesModel: Bool
    /// The colour projection of the model's latents, for the quick previews of each step.
    let preview: LatentPreview
    let pipeline: StableDiffusionPipeline
    let tokens: TokenizedPrompt
    let swap: (index: Int, old: String, new: String)?
    let narrator: Narrator
    let out: LessonOutput

    /// One picture and what its cross-attention looked at.
    struct Watched {
        let image: RGBImage
        let maps: AttentionMaps
        /// The sampler's x₀ estimate after each step, as a quick latent preview.
        let previews: [RGBImage]
    }

    func run() throws {
        let (main, seconds) = try listenIn()
        try showWordMaps(main)
        try showMapsOverSteps(main)
        try showGuidanceScales(main, seconds: seconds)
        try swapOneWord(main)
        narrator.stage("Done")
        narrator.say("Files written:\n" + out.summary)
        narrator.say("Next: the sd command (sd generate --help) runs the whole pipeline with every setting exposed.")
    }

    /// Stage 4: one generation with the observer attached. Returns it and how long it took.
    func listenIn() throws -> (Watched, seconds: Double) {
        narrator.stage("Listening in on a real generation")
        narrator.say("""
            Now the same arithmetic inside Stable Diffusion. Every cross-attention layer of the UNet reports its \
            softmax probabilities: for each latent pixel, how much it looks at each of the 77 tokens. We add them up \
            per word, average over the heads, stretch every layer's map to the latent size, and average over the \
            layers.
            """)
        let started = Date()
        let main = try generate(prompt: drawing.prompt, tokens: tokens, cfg: drawing.cfg, progress: true)
        let seconds = Date().timeIntervalSince(started)
        let maps = main.maps
        let sizes = maps.distinctLayerSizes.map { "\($0.width)x\($0.height)" }.joined(separator: ", ")
        narrator.say("""
            The UNet has \(maps.layerSizes.count) cross-attention layers; they see the picture at \(sizes) latent \
            pixels, with \(maps.layerSizes.first?.heads ?? 0) heads each:
            """)
        for size in maps.layerSizes {
            narrator.show(size.name.padding(toLength: max(56, size.name.count + 1), withPad: " ", startingAt: 0)
                          + String(format: "%3d x %-3d  %d heads", size.width, size.height, size.heads))
        }
        let shares = maps.averageShares
        narrator.say(String(format: """
            On average a pixel gives %.0f%% of its attention to <start>, %.0f%% to the end token and padding, and only \
            %.0f%% to the %d words of the prompt.
            """, 100 * shares.start, 100 * shares.end, 100 * shares.words, tokens.tokens.count) + " " + (shares.start > shares.end ? """
            Most of it rests on <start>, a token that carries no meaning and so changes little (as in SD 1.x); the \
            words' small share is what steers the picture.
            """ : """
            Most of it rests on the end token and the padding: they come after every word and have read the whole \
            prompt, so they carry its gist, a summary any pixel can consult. (SD 1.x's UNet parks most of its \
            attention on <start> instead.) The words' own share is what places things.
            """))
        narrator.preview(main.image)
        narrator.show("wrote " + (try out.save(main.image.captioned(drawing.prompt), as: "picture.png", extra: [("cfg", "\(drawing.cfg)")])))
        narrator.show("wrote " + (try out.save(text: csv(maps), as: "attention.csv")))
        narrator.pause()
        return (main, seconds)
    }

    /// Stage 5: one heatmap per word.
    func showWordMaps(_ main: Watched) throws {
        narrator.stage("Where each word looks")
        narrator.say("""
            For each token: its map averaged over all steps, scaled to 0...1 (each map on its own scale, so a quiet \
            word shows as clearly as a loud one), shown alone and as a light over the final picture: bright = the \
            pixels that listened to this word.
            """)
        let maps = main.maps
        narrator.show("position   token                share of attention   strongest at (x, y)")
        var sheet: [RGBImage] = [], labels: [String] = []
        for (k, token) in tokens.tokens.enumerated() {
            let position = k + 1
            let map = maps.normalisedMap(positions: [position])
            let peak = maps.peak(of: map), share = maps.share(positions: [position])
            narrator.show(String(format: "%8d   %@ %8.2f%%             (%d, %d) of %dx%d", position,
                                 token.description.padding(toLength: 20, withPad: " ", startingAt: 0), 100 * share,
                                 peak.x, peak.y, maps.latentWidth, maps.latentHeight))
            let lit = spotlight(main.image, map)
            try saveWordPanel(token, position: position, share: share, map: heatmap(map, of: maps), lit: lit)
            sheet.append(tile(lit))
            labels.append(String(format: "%d %@ %.1f%%", position, token.description, 100 * share))
        }
        if let folder = lesson.saveMaps {
            try ensureDirectory(folder)
            for (k, token) in tokens.tokens.enumerated() {
                let name = String(format: "%02d-%@.npy", k + 1, Self.fileName(for: token.text))
                try NumPyFile.write(maps.meanMap(position: k + 1), to: folder + "/" + name)
            }
            narrator.show(String(format: "wrote %d maps of %dx%d latent pixels to %@/ (numpy.load(\"%@/02-....npy\"))",
                                 tokens.tokens.count, maps.latentHeight, maps.latentWidth, folder, folder))
        }
        narrator.show("wrote \(tokens.tokens.count) heatmaps, "
                      + out.path(String(format: "%02d-%@.png", 1, Self.fileName(for: tokens.tokens[0].text))) + " ...")
        let all = RGBImage.grid(sheet, columns: min(4, sheet.count), labels: labels,
                                title: "\"\(drawing.prompt)\": where each token is looked at (bright = most)")
        narrator.say(isShapesModel ? """
            In the shapes model the shape word lights up its shape and a place word its side of the picture. The \
            colour word is often fainter: the text encoder reads left to right, so the shape word's vector has \
            already read the colour, and the UNet can take the colour from there. With a random-weight model the \
            maps are noise.
            """ : """
            Nouns usually light up their object; adjectives light up what they describe; small words (a, on, the) \
            spread thinly. With a random-weight model the maps are noise.
            """)
        narrator.show("wrote " + (try out.save(all, as: "words.png")))
        narrator.pause()
    }

    /// Stage 6: the maps over the steps.
    func showMapsOverSteps(_ main: Watched) throws {
        narrator.stage("The words' maps, step by step")
        let maps = main.maps, shown = Self.animatedTokenCount(tokens.tokens.count)
        let focus = focusPositions(maps)
        let early = AttentionMaps.share(of: focus, in: maps.steps.first!)
        let late = AttentionMaps.share(of: focus, in: maps.steps.last!)
        narrator.say(String(format: """
            One frame per step: the sampler's current guess of the picture (a quick 4-to-3 channel preview of its x0 \
            estimate), and each word's map of that step (each on its own scale). At the first step the picture is \
            noise, yet the maps already have a shape: the layout is decided in the first few steps. "%@" gets %.2f%% \
            of the attention at step 1 and %.2f%% at step %d.
            """, focusName(focus), 100 * early, 100 * late, maps.steps.count))
        if tokens.tokens.count > shown { narrator.say("(The animation shows the first \(shown) tokens.)") }
        narrator.show("wrote " + (try out.save(stepAnimation(main), as: "words-over-steps.gif")))
        narrator.pause()
    }

    /// Stage 7: guidance, the same seed at several scales w.
    func showGuidanceScales(_ main: Watched, seconds: Double) throws {
        let focus = focusPositions(main.maps), name = focusName(focus)
        narrator.stage("Guidance scale: how loudly the words speak")
        let more = CrossAttention.guidanceScales.filter { $0 != drawing.cfg }.count
        narrator.say("""
            Classifier-free guidance runs the UNet twice per step, with the prompt and with an empty prompt, and \
            pushes the prediction away from the empty one: ε = ε_empty + w · (ε_prompt − ε_empty). Within one UNet \
            call nothing changes: the words act through attention at every w. But each step's mix moves x_t \
            somewhere else, so the next steps attend to a different picture, and the maps change with w too (the \
            shares below). Same seed, w = 1, 3, 7.5, 12, with the map of "\(name)" underneath.
            """ + String(format: " The picture above took %.1f s; this stage makes %d more%@, about as long each.",
                         seconds, more, swap == nil ? "" : " and the next stage 1"))
        var pictures: [RGBImage] = [], overlays: [RGBImage] = [], labels: [String] = []
        for scale in CrossAttention.guidanceScales {
            let watched = scale == drawing.cfg ? main : try generate(prompt: drawing.prompt, tokens: tokens, cfg: scale, progress: false)
            let share = watched.maps.share(positions: focus)
            let contrast = TensorSummary(watched.image.toTensor()).standardDeviation
            narrator.show(String(format: "w = %4.1f: \"%@\" gets %.2f%% of the attention; picture contrast (std of pixels) %.3f",
                                 scale, name, 100 * share, contrast))
            pictures.append(tile(watched.image))
            overlays.append(tile(spotlight(watched.image, watched.maps.normalisedMap(positions: focus))))
            labels.append(String(format: "w = %g", scale))
        }
        let guidance = RGBImage.grid(pictures + overlays, columns: pictures.count,
                                     labels: labels + labels.map { "\($0): \"\(name)\"" },
                                     title: "\"\(drawing.prompt)\", seed \(lesson.seed): guidance scale w")
        narrator.say("""
            At w = 1 the sampler uses the prompted prediction as it is, and the picture follows the words as well as \
            the network learned them. Larger w extrapolates: it goes w times as far in the direction the words \
            moved the prediction, to predictions the network never made in training (it learned only w = 0, the \
            empty prompt, and w = 1). A little of that sharpens what the words asked for; too much over-shoots.
            """)
        narrator.say(isShapesModel ? """
            This small model is trained well enough that w = 1 to 3 already draws what the prompt says; at 7.5 and \
            12 the shape bulges and its colour runs. SD 1.x follows its prompts loosely at w = 1 and is usually run \
            at 7.5, where its colours and contrast grow; past about 10 it looks over-cooked.
            """ : """
            In SD 1.x that shows as stronger colours and contrast, and past about 10 an over-cooked look.
            """)
        narrator.show("wrote " + (try out.save(guidance, as: "guidance-scales.png")))
        narrator.pause()
    }

    /// Stage 8: swap one word, keep the seed.
    func swapOneWord(_ main: Watched) throws {
        narrator.stage("Swapping one word")
        guard let swap else {
            narrator.say("""
                Skipped: the prompt has none of the words swapped by default (\(CrossAttention.defaultSwaps.keys.sorted().joined(separator: ", "))). Give --swap OLD=NEW (one word of the prompt and its replacement) \
                to see this stage.
                """)
            return
        }
        let words = PromptWords.swapping(PromptWords.words(drawing.prompt), at: swap.index, with: swap.new)
        let swapped = words.joined(separator: " ")
        let tokenizer = try pipeline.tokenizer()
        let oldPositions = PromptWords.tokenPositions(ofWord: swap.index, in: PromptWords.words(drawing.prompt), tokenizer: tokenizer)
        let newPositions = PromptWords.tokenPositions(ofWord: swap.index, in: words, tokenizer: tokenizer)
        let swappedTokens = tokenizer.tokenize(swapped)
        guard oldPositions.allSatisfy({ $0 <= tokens.tokens.count }), newPositions.allSatisfy({ $0 <= swappedTokens.tokens.count }) else {
            narrator.say("Skipped: '\(swap.old)' is beyond the \(CLIPTokenizer.maximumContentLength) tokens CLIP reads.")
            return
        }
        narrator.say("""
            Same seed, same settings, one word changed: "\(swapped)". The starting noise is identical, and so is every \
            other token up to the swapped one, so the layout tends to stay while the object changes.
            """)
        let other = try generate(prompt: swapped, tokens: swappedTokens, cfg: drawing.cfg, progress: false)
        let before = main.maps.normalisedMap(positions: oldPositions)
        let after = other.maps.normalisedMap(positions: newPositions)
        narrator.show(String(format: "\"%@\" map vs \"%@\" map: correlation %.2f", swap.old, swap.new,
                             Statistics.correlation(before, after)))
        narrator.show(String(format: "pictures differ by %.1f grey levels per channel on average (of 255)",
                             main.image.meanAbsoluteDifference(to: other.image)))
        let comparison = RGBImage.grid([tile(main.image), tile(spotlight(main.image, before)),
                                        tile(other.image), tile(spotlight(other.image, after))], columns: 4,
                                       labels: [drawing.prompt, "\"\(swap.old)\"", swapped, "\"\(swap.new)\""],
                                       title: "one word swapped, seed \(lesson.seed): \(swap.old) -> \(swap.new)")
        narrator.show("wrote " + (try out.save(comparison, as: "swapped-word.png", extra: [("swap", "\(swap.old)=\(swap.new)")])))
    }

    // MARK: Generation

    /// One picture, with the cross-attention observer attached.
    func generate(prompt: String, tokens: TokenizedPrompt, cfg: Float, progress: Bool) throws -> Watched {
        let request = drawing.request(steps: lesson.steps, seed: lesson.seed, prompt: prompt, cfg: cfg)
        let maps = AttentionMaps(latentHeight: request.height / 8, latentWidth: request.width / 8,
                                 tokenCount: tokens.tokens.count, batch: request.usesGuidance ? 1 : 0)
        var previews: [RGBImage] = []
        let started = Date()
        if !progress { narrator.show(String(format: "generating \"%@\" at w = %g ...", prompt, cfg)) }
        let result = try pipeline.generate(request, crossAttentionObserver: maps.observe) { step in
            maps.finishStep(index: step.index, timestep: step.timestep)
            previews.append(RGBImage(tensor: preview.rgb(step.predictedOriginal)))
            guard progress, let last = maps.steps.last else { return }
            narrator.show(String(format: "step %2d/%d  t = %3.0f   <start> %4.1f%%   words %4.1f%%   end+padding %4.1f%%   (%.0f s)",
                                 step.index + 1, step.count, step.timestep, 100 * last.startShare,
                                 100 * last.tokenShares.reduce(0, +), 100 * last.endShare, Date().timeIntervalSince(started)))
        }
        return Watched(image: RGBImage(tensor: result.image), maps: maps, previews: previews)
    }

    // MARK: Words

    /// The token positions of the word the guidance grid follows: the swapped word, or else the
    /// content token (with a letter in it) that gets the most attention.
    func focusPositions(_ maps: AttentionMaps) -> [Int] {
        if let swap, let tokenizer = try? pipeline.tokenizer() {
            let positions = PromptWords.tokenPositions(ofWord: swap.index, in: PromptWords.words(drawing.prompt), tokenizer: tokenizer)
            if positions.allSatisfy({ $0 <= tokens.tokens.count }) { return positions }
        }
        return [maps.loudestWordPosition(tokens: tokens.tokens)]
    }

    /// The focus word as its tokens read together.
    func focusName(_ focus: [Int]) -> String {
        focus.map { tokens.tokens[$0 - 1].description }.joined()
    }
}
