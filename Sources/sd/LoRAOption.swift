import ArgumentParser

/// `--lora FILE[:STRENGTH]`: a LoRA file and how strongly to apply it (1 by default).
struct LoRAArgument: ExpressibleByArgument {
    var path: String
    var strength: Double

    init?(argument: String) {
        // The strength follows the last colon when what follows is a number; otherwise the
        // whole argument is the path.
        if let colon = argument.lastIndex(of: ":"), let strength = Double(argument[argument.index(after: colon)...]),
           strength.isFinite, colon != argument.startIndex {
            path = String(argument[..<colon])
            self.strength = strength
        } else {
            path = argument
            strength = 1
        }
    }
}
