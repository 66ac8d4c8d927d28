import ArgumentParser
import Foundation
import StableDiffusion

/// Shows how Stable Diffusion's tokenizer reads a prompt: the 77 token ids, then each token with
/// its position, id and text.
///
/// The first line is the 77 ids, space-separated, ready to paste into Python. Then one line per
/// token; the padding after the end token is summarised in one line. A token that does not end a
/// word is shown with a trailing "-" ("stable-" "dif-" "fusion"); the last column is the
/// vocabulary entry itself, where "</w>" marks a word end. Prompts longer than 75 tokens are
/// cut, and a warning on standard error says what the model will not see.
///
/// ```
/// $ sd tokenize "a photograph of an astronaut riding a horse"
/// 49406 320 8853 539 550 18376 6765 320 4558 49407 49407 ... 49407
/// pos     id  token             vocabulary entry
///   0  49406  <|startoftext|>   <|startoftext|>
///   1    320  a                 a</w>
///   2   8853  photograph        photograph</w>
///   ...
///   9  49407  <|endoftext|>     <|endoftext|>
/// ... 67 x <|endoftext|> (padding), positions 10...76
/// ```
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Show the CLIP token ids and tokens of a prompt.")

    @Argument(help: "The prompt text.")
    var text: String

    @Option(help: ArgumentHelp("A diffusers model folder whose tokenizer/ files to use instead of the built-in merges.",
                               valueName: "folder"))
    var checkpoint: String?

    func run() throws {
        let tokenizer: CLIPTokenizer
        if let checkpoint {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: checkpoint, isDirectory: &isDirectory) else {
                throw ValidationError("'\(checkpoint)' does not exist")
            }
            guard isDirectory.boolValue else {
                throw ValidationError("--checkpoint must be a diffusers folder; single-file checkpoints carry no tokenizer (the built-in one is the same for every SD 1.x model)")
            }
            tokenizer = try CLIPTokenizer(diffusersFolder: URL(fileURLWithPath: checkpoint))
        } else {
            tokenizer = try CLIPTokenizer()
        }

        let prompt = tokenizer.tokenize(text)
        print(prompt.ids.map(String.init).joined(separator: " "))
        func row(_ position: String, _ id: String, _ token: String, _ entry: String) {
            print(pad(position, 3, left: true), pad(id, 5, left: true), pad(token, 16), entry, separator: "  ")
        }
        func line(_ position: Int, _ id: Int, _ token: String) {
            let entry = tokenizer.tokenTexts.indices.contains(id) ? tokenizer.tokenTexts[id] : "?"
            row(String(position), String(id), token, entry)
        }
        row("pos", "id", "token", "vocabulary entry")
        line(0, prompt.ids[0], "<|startoftext|>")
        for (i, token) in prompt.tokens.enumerated() { line(i + 1, token.id, token.description) }
        line(prompt.endPosition, prompt.ids[prompt.endPosition], "<|endoftext|>")
        if prompt.paddingCount > 0 {
            let name = tokenizer.token(for: tokenizer.paddingID)?.text ?? String(tokenizer.paddingID)
            print("... \(prompt.paddingCount) x \(name) (padding), positions \(prompt.endPosition + 1)...\(prompt.ids.count - 1)")
        }

        if prompt.truncatedCount > 0 {
            let dropped = tokenizer.encode(text).suffix(prompt.truncatedCount)
                .map { tokenizer.token(for: $0)?.description ?? String($0) }
            let total = prompt.tokens.count + prompt.truncatedCount
            let warning = "warning: the prompt is \(total) tokens long but the text encoder reads only "
                + "\(CLIPTokenizer.maximumContentLength); these \(prompt.truncatedCount) were dropped: "
                + dropped.joined(separator: " ") + "\n"
            FileHandle.standardError.write(Data(warning.utf8))
        }
    }
}

/// `text` padded with spaces to `width` characters, on the left for numbers.
private func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let spaces = String(repeating: " ", count: max(0, width - text.count))
    return left ? spaces + text : text + spaces
}
