import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// The lesson's second half, with a checkpoint: real generations, watched from inside the UNet's
/// cross-attention layers.
struct WatchedGeneration {
    let lesson: CrossAttention
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
        // Stage 4: one generation with the observer attached.
        narrator.stage("Listening in on a real generation")
        narrator.say("Now the same arithmetic inside Stable Diffusion. Every cross-attention layer of the UNet reports its softmax probabilities: for each latent pixel, how much it looks at each of the 77 tokens. We add them up per word, average over the heads, stretch every layer's map to the latent size, and average over the layers.")
        let started = Date()
        let main = try generate(prompt: lesson.prompt, tokens: tokens, cfg: lesson.cfg, progress: true)
        let seconds = Date().timeIntervalSince(started)
        let maps = main.maps
        let sizes = maps.layerSizes
        narrator.say("The UNet has \(sizes.count) cross-attention layers; they see the picture at " + Set(sizes.map { "\($0.width)x\($0.height)" }).sorted { $0.count > $1.count || ($0.count == $1.count && $0 > $1) }.joined(separator: ", ") + " latent pixels, with \(sizes.first?.heads ?? 0) heads each:")
        for size in sizes { narrator.show(size.name.padding(toLength: max(56, size.name.count + 1), withPad: " ", startingAt: 0) + String(format: "%3d x %-3d  %d heads", size.width, size.height, size.heads)) }
        let start = average(maps.steps.map(\.startShare)), end = average(maps.steps.map(\.endShare))
        let wordShare = 1 - start - end
        narrator.say(String(format: "On average a pixel gives %.0f%% of its attention to <start>, %.0f%% to the end token and padding, and only %.0f%% to the %d words of the prompt. In a trained SD 1.x model most of it rests on <start>, a token that carries no meaning and so changes little; the words' small share is what steers the picture.", 100 * start, 100 * end, 100 * wordShare, tokens.tokens.count))
        narrator.preview(main.image)
        narrator.show("wrote " + (try out.save(main.image.captioned(lesson.prompt), as: "picture.png", extra: [("cfg", "\(lesson.cfg)")])))
        narrator.show("wrote " + (try out.save(text: csv(maps), as: "attention.csv")))
        narrator.pause()

        // Stage 5: one heatmap per word.
        narrator.stage("Where each word looks")
        narrator.say("For each token: its map averaged over all steps, scaled to 0...1 (each map on its own scale, so a quiet word shows as clearly as a loud one), shown alone and as a light over the final picture: bright = the pixels that listened to this word.")
        narrator.show("position   token                share of attention   strongest at (x, y)")
        var sheet: [RGBImage] = [], labels: [String] = []
        for (k, token) in tokens.tokens.enumerated() {
            let position = k + 1
            let map = maps.normalisedMap(positions: [position])
            let peak = map.indices.max { map[$0] < map[$1] } ?? 0
            let share = maps.share(positions: [position])
            narrator.show(String(format: "%8d   %@ %8.2f%%             (%d, %d) of %dx%d", position,
                                 token.description.padding(toLength: 20, withPad: " ", startingAt: 0), 100 * share,
                                 peak % maps.latentWidth, peak / maps.latentWidth, maps.latentWidth, maps.latentHeight))
            let lit = spotlight(main.image, map)
            let name = String(format: "%02d-%@.png", position, Self.fileName(for: token.text))
            out.parameters.append(("token", token.description))
            defer { out.parameters.removeLast() }
            let panel = RGBImage.sideBySide([tile(heatmap(map, of: maps), side: 384), tile(lit, side: 384)],
                                            labels: ["attention map (black 0, yellow 1)", "the picture, lit where the map is bright"],
                                            title: String(format: "\"%@\" (token %d): %.2f%% of the attention", token.description, position, 100 * share))
            try out.save(panel, as: name)
            sheet.append(tile(lit))
            labels.append(String(format: "%d %@ %.1f%%", position, token.description, 100 * share))
        }
        narrator.show("wrote \(tokens.tokens.count) heatmaps, " + out.path(String(format: "%02d-%@.png", 1, Self.fileName(for: tokens.tokens[0].text))) + " ...")
        let all = RGBImage.grid(sheet, columns: min(4, sheet.count), labels: labels,
                                title: "\"\(lesson.prompt)\": where each token is looked at (bright = most)")
        narrator.say("Nouns usually light up their object; adjectives light up what they describe; small words (a, on, the) spread thinly. With a random or tiny model the maps are noise.")
        narrator.show("wrote " + (try out.save(all, as: "words.png")))
        narrator.pause()

        // Stage 6: the maps over the steps.
        narrator.stage("The words' maps, step by step")
        try animate(main)
        narrator.pause()

        // Stage 7: guidance.
        let focus = focusPositions(maps)
        let focusName = focus.map { tokens.tokens[$0 - 1].description }.joined()
        narrator.stage("Guidance scale: how loudly the words speak")
        narrator.say("Classifier-free guidance runs the UNet twice per step, with the prompt and with an empty prompt, and pushes the prediction away from the empty one: ε = ε_empty + w · (ε_prompt − ε_empty). Attention itself is unchanged; what changes is how much the difference it makes counts. Same seed, w = 1, 3, 7.5, 12, with the map of \"\(focusName)\" underneath. " + String(format: "The picture above took %.0f s; this stage makes %d more%@, about as long each.", seconds, CrossAttention.guidanceScales.filter { $0 != lesson.cfg }.count, swap == nil ? "" : " and the next stage 1"))
        var pictures: [RGBImage] = [], overlays: [RGBImage] = [], cfgLabels: [String] = []
        for scale in CrossAttention.guidanceScales {
            let watched = scale == lesson.cfg ? main : try generate(prompt: lesson.prompt, tokens: tokens, cfg: scale, progress: false)
            let share = watched.maps.share(positions: focus)
            narrator.show(String(format: "w = %4.1f: \"%@\" gets %.2f%% of the attention; picture contrast (std of pixels) %.3f",
                                 scale, focusName, 100 * share, watched.image.toTensor().standardDeviation))
            pictures.append(tile(watched.image))
            overlays.append(tile(spotlight(watched.image, watched.maps.normalisedMap(positions: focus))))
            cfgLabels.append(String(format: "w = %g", scale))
        }
        let guidance = RGBImage.grid(pictures + overlays, columns: pictures.count,
                                     labels: cfgLabels + cfgLabels.map { "\($0): \"\(focusName)\"" },
                                     title: "\"\(lesson.prompt)\", seed \(lesson.seed): guidance scale w")
        narrator.say("At w = 1 the words act only through attention, and the picture follows them loosely. Higher w exaggerates what the words changed: stronger colours and contrast, and past about 10 an over-cooked look.")
        narrator.show("wrote " + (try out.save(guidance, as: "guidance-scales.png")))
        narrator.pause()

        // Stage 8: swap one word.
        narrator.stage("Swapping one word")
        guard let swap else {
            narrator.say("Skipped: the prompt has no 'apple'. Give --swap OLD=NEW (one word of the prompt and its replacement) to see this stage.")
            return finish()
        }
        var words = lesson.promptWords
        let original = words[swap.index]
        words[swap.index] = original.replacingOccurrences(of: CrossAttention.core(of: original), with: swap.new,
                                                          options: .caseInsensitive)
        let swapped = words.joined(separator: " ")
        let tokenizer = try pipeline.tokenizer()
        let oldPositions = positions(ofWord: swap.index, in: lesson.promptWords, tokenizer: tokenizer)
        let newPositions = positions(ofWord: swap.index, in: words, tokenizer: tokenizer)
        let swappedTokens = tokenizer.tokenize(swapped)
        guard oldPositions.allSatisfy({ $0 <= tokens.tokens.count }), newPositions.allSatisfy({ $0 <= swappedTokens.tokens.count }) else {
            narrator.say("Skipped: '\(swap.old)' is beyond the \(CLIPTokenizer.maximumContentLength) tokens CLIP reads.")
            return finish()
        }
        narrator.say("Same seed, same settings, one word changed: \"\(swapped)\". The starting noise is identical, and so is every other token up to the swapped one, so the layout tends to stay while the object changes.")
        let other = try generate(prompt: swapped, tokens: swappedTokens, cfg: lesson.cfg, progress: false)
        let before = maps.normalisedMap(positions: oldPositions)
        let after = other.maps.normalisedMap(positions: newPositions)
        let difference = zip(main.image.pixels, other.image.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
        narrator.show(String(format: "\"%@\" map vs \"%@\" map: correlation %.2f", swap.old, swap.new, correlation(before, after)))
        narrator.show(String(format: "pictures differ by %.1f grey levels per channel on average (of 255)",
                             Double(difference) / Double(main.image.pixels.count)))
        let comparison = RGBImage.grid([tile(main.image), tile(spotlight(main.image, before)),
                                        tile(other.image), tile(spotlight(other.image, after))], columns: 4,
                                       labels: [lesson.prompt, "\"\(swap.old)\"", swapped, "\"\(swap.new)\""],
                                       title: "one word swapped, seed \(lesson.seed): \(swap.old) -> \(swap.new)")
        narrator.show("wrote " + (try out.save(comparison, as: "swapped-word.png", extra: [("swap", "\(swap.old)=\(swap.new)")])))
        finish()
    }

    func finish() {
        narrator.stage("Done")
        narrator.say("Files written:\n" + out.summary)
        narrator.say("Next: the sd command (sd generate --help) runs the whole pipeline with every setting exposed.")
    }

    // MARK: Generation

    /// One picture, with the cross-attention observer attached.
    func generate(prompt: String, tokens: TokenizedPrompt, cfg: Float, progress: Bool) throws -> Watched {
        let request = lesson.request(prompt: prompt, cfg: cfg)
        let maps = AttentionMaps(latentHeight: request.height / 8, latentWidth: request.width / 8,
                                 tokenCount: tokens.tokens.count, batch: request.usesGuidance ? 1 : 0)
        var previews: [RGBImage] = []
        let started = Date()
        if !progress { narrator.show(String(format: "generating \"%@\" at w = %g ...", prompt, cfg)) }
        let result = try pipeline.generate(request, crossAttentionObserver: maps.observe) { step in
            maps.finishStep(index: step.index, timestep: step.timestep)
            previews.append(RGBImage(tensor: LatentPreview.rgb(step.predictedOriginal)))
            guard progress, let last = maps.steps.last else { return }
            narrator.show(String(format: "step %2d/%d  t = %3.0f   <start> %4.1f%%   words %4.1f%%   end+padding %4.1f%%   (%.0f s)",
                                 step.index + 1, step.count, step.timestep, 100 * last.startShare,
                                 100 * last.tokenShares.reduce(0, +), 100 * last.endShare, Date().timeIntervalSince(started)))
        }
        return Watched(image: RGBImage(tensor: result.image), maps: maps, previews: previews)
    }

    // MARK: Pictures

    /// The animation: per step, the x₀ estimate and each word's map of that step over it.
    func animate(_ watched: Watched) throws {
        let maps = watched.maps
        let shown = Array(tokens.tokens.enumerated().prefix(11))
        var animation = AnimatedGIF()
        for (step, preview) in zip(maps.steps, watched.previews) {
            let base = tile(preview, side: 160)
            var tiles = [base], labels = ["x0 estimate"]
            for (k, token) in shown {
                let map = AttentionMaps.scaledToUnit(step.maps[k])
                tiles.append(tile(heatmap(map, of: maps), side: 160))
                labels.append(String(format: "%@ %.1f%%", token.description, 100 * step.tokenShares[k]))
            }
            // At most 6 across, with the rows as evenly filled as possible.
            let rows = (tiles.count + 5) / 6
            let frame = RGBImage.grid(tiles, columns: (tiles.count + rows - 1) / rows, labels: labels,
                                      title: String(format: "step %d/%d   t = %.0f", step.index + 1, maps.steps.count, step.timestep))
            animation.addFrame(frame, delay: step.index == maps.steps.count - 1 ? 200 : 40)
        }
        let early = maps.steps.first!, late = maps.steps.last!
        let focus = focusPositions(maps)
        let earlyShare = focus.reduce(Float(0)) { $0 + early.tokenShares[$1 - 1] }
        let lateShare = focus.reduce(Float(0)) { $0 + late.tokenShares[$1 - 1] }
        narrator.say(String(format: "One frame per step: the sampler's current guess of the picture (a quick 4-to-3 channel preview of its x0 estimate), and each word's map of that step (each on its own scale). At the first step the picture is noise, yet the maps already have a shape: the layout is decided in the first few steps. \"%@\" gets %.2f%% of the attention at step 1 and %.2f%% at step %d.",
                            focus.map { tokens.tokens[$0 - 1].description }.joined(), 100 * earlyShare, 100 * lateShare, maps.steps.count))
        if tokens.tokens.count > shown.count { narrator.say("(The animation shows the first \(shown.count) tokens.)") }
        narrator.show("wrote " + (try out.save(animation, as: "words-over-steps.gif")))
    }

    func heatmap(_ map: [Float], of maps: AttentionMaps) -> RGBImage {
        RGBImage(heatmap: map, width: maps.latentWidth, height: maps.latentHeight, colorMap: .magma, range: 0...1)
    }

    /// The picture lit by a 0...1 latent-size map: full brightness where the map is 1, a dim
    /// 15% where it is 0, so the places a word steers stand out and the rest stays recognisable.
    func spotlight(_ image: RGBImage, _ map: [Float]) -> RGBImage {
        let (h, w) = (lesson.height / 8, lesson.width / 8)
        let light = AttentionMaps.resizeBilinear(map, height: h, width: w, toHeight: image.height, toWidth: image.width)
        var pixels = image.pixels
        for i in pixels.indices { pixels[i] = UInt8((Float(pixels[i]) * (0.15 + 0.85 * light[i / 3])).rounded()) }
        return RGBImage(width: image.width, height: image.height, pixels: pixels)
    }

    /// A picture scaled so that its longer side is `side` pixels.
    func tile(_ image: RGBImage, side: Int = 256) -> RGBImage {
        let scale = Double(side) / Double(max(image.width, image.height))
        return image.resized(width: max(1, Int((Double(image.width) * scale).rounded())),
                             height: max(1, Int((Double(image.height) * scale).rounded())))
    }

    // MARK: Words and numbers

    /// The token positions of the word the guidance grid follows: the swapped word, or else the
    /// content token (with a letter in it) that gets the most attention.
    func focusPositions(_ maps: AttentionMaps) -> [Int] {
        if let swap, let tokenizer = try? pipeline.tokenizer() {
            let positions = positions(ofWord: swap.index, in: lesson.promptWords, tokenizer: tokenizer)
            if positions.allSatisfy({ $0 <= tokens.tokens.count }) { return positions }
        }
        let candidates = (1...tokens.tokens.count).filter { tokens.tokens[$0 - 1].text.contains(where: \.isLetter) }
        return [candidates.max { maps.share(positions: [$0]) < maps.share(positions: [$1]) } ?? 1]
    }

    /// The 1-based token positions of word `index` of `words`.
    func positions(ofWord index: Int, in words: [String], tokenizer: CLIPTokenizer) -> [Int] {
        let before = tokenizer.encode(words[..<index].joined(separator: " ")).count
        let count = max(1, tokenizer.encode(words[index]).count)
        return Array((before + 1)...(before + count))
    }

    /// The attention numbers of the main run, one row per step and token.
    func csv(_ maps: AttentionMaps) -> String {
        var lines = ["step,timestep,position,token,mean_attention"]
        for step in maps.steps {
            let prefix = String(format: "%d,%.0f", step.index + 1, step.timestep)
            lines.append(prefix + String(format: ",0,<start>,%.6f", step.startShare))
            for (k, token) in tokens.tokens.enumerated() {
                lines.append(prefix + String(format: ",%d,%@,%.6f", k + 1, Self.csvField(token.description), step.tokenShares[k]))
            }
            lines.append(prefix + String(format: ",%d,<end>+padding,%.6f", tokens.endPosition, step.endShare))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func csvField(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
            ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }

    /// A token's text made safe for a file name: "apple" stays, "," becomes "comma", "é" → "token".
    static func fileName(for text: String) -> String {
        let named: [String: String] = [",": "comma", ".": "period", "!": "exclamation", "?": "question", "-": "hyphen"]
        if let name = named[text] { return name }
        let kept = String(text.lowercased().unicodeScalars.filter { ("a"..."z").contains($0) || ("0"..."9").contains($0) }.map(Character.init))
        return kept.isEmpty ? "token" : String(kept.prefix(40))
    }

    func average(_ values: [Float]) -> Float { values.isEmpty ? 0 : values.reduce(0, +) / Float(values.count) }

    func correlation(_ a: [Float], _ b: [Float]) -> Float {
        let ma = average(a), mb = average(b)
        var ab: Float = 0, aa: Float = 0, bb: Float = 0
        for (x, y) in zip(a, b) { ab += (x - ma) * (y - mb); aa += (x - ma) * (x - ma); bb += (y - mb) * (y - mb) }
        return aa > 0 && bb > 0 ? ab / (aa * bb).squareRoot() : 0
    }
}
