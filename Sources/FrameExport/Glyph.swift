import Foundation

/// One character cell as it is drawn.
///
/// gd's fonts cover ISO-8859-2 (Latin-2): ASCII plus accented letters and a few symbols such as
/// `×`, `÷`, `°` and `ß`. Lesson texts also use Greek letters and maths (`x_t = √ᾱ_t·x₀ + ...`), so
/// every character is mapped to the closest thing we can draw, in this order:
///
/// 1. printable ASCII and any character Latin-2 has: the font's own glyph;
/// 2. `√` and `·`: drawn by us (`Shape.squareRoot`, `Shape.middleDot`);
/// 3. a look-alike from `lookalikes`: `α` is drawn as `a`, `β` as `ß`, `₀` as `0`, `−` as `-`;
/// 4. a letter with a macron or overline (`ā`, `ᾱ`, `x̄`): the base letter with a bar drawn over
///    it, so `ᾱ` reads as "alpha bar"; other accents outside Latin-2 are dropped;
/// 5. anything else: `?`.
struct Glyph: Equatable {
    enum Shape: Equatable {
        /// An index into gd's font table (an ISO-8859-2 code).
        case fontCharacter(Int)
        case squareRoot
        case middleDot
    }

    var shape: Shape
    /// Draw a bar above the cell, as in `ā`.
    var overline = false

    /// The glyphs that draw `text`; usually one per character, several for look-alikes like `π` -> `pi`.
    static func glyphs(for text: String) -> [Glyph] {
        text.flatMap(glyphs(for:))
    }

    static func glyphs(for character: Character) -> [Glyph] {
        if character == "√" { return [Glyph(shape: .squareRoot)] }
        if character == "·" || character == "⋅" { return [Glyph(shape: .middleDot)] }
        if let code = fontCode(character) { return [Glyph(shape: .fontCharacter(code))] }
        if let replacement = lookalikes[character] { return glyphs(for: replacement) }

        // Split into a base character and combining marks: "ᾱ" is "α" + U+0304 COMBINING MACRON.
        let scalars = Array(String(character).decomposedStringWithCanonicalMapping.unicodeScalars)
        if scalars.count > 1, let base = scalars.first, Character(base) != character {
            var result = glyphs(for: Character(base))
            let overlined = scalars.dropFirst().contains { $0.value == 0x0304 || $0.value == 0x0305 }
            if overlined && !result.isEmpty { result[0].overline = true }
            return result
        }
        return [Glyph(shape: .fontCharacter(Int(Character("?").asciiValue!)))]
    }

    /// Calls `ink(column, row)` for the pixels we draw ourselves in a `cellWidth x cellHeight` cell
    /// (font pixels): the square root and middle dot shapes, and the overline bar.
    func forEachHandDrawnPixel(cellWidth: Int, cellHeight: Int, _ ink: (Int, Int) -> Void) {
        switch shape {
        case .fontCharacter:
            break
        case .squareRoot:
            // A short tick, a long rising stroke, then the bar over the radicand, joining the
            // points (0, 60%), (30%, 85%), (60%, 15%) and (right edge, 15%) of the cell.
            let top = cellHeight * 15 / 100
            let corners = [(0, cellHeight * 6 / 10), (cellWidth * 3 / 10, cellHeight * 85 / 100),
                           (cellWidth * 6 / 10, top), (cellWidth - 1, top)]
            for (start, end) in zip(corners, corners.dropFirst()) {
                let steps = max(abs(end.0 - start.0), abs(end.1 - start.1), 1)
                for step in 0...steps {
                    ink(start.0 + (end.0 - start.0) * step / steps, start.1 + (end.1 - start.1) * step / steps)
                }
            }
        case .middleDot:
            let size = max(1, cellWidth / 4)
            for row in 0..<size {
                for column in 0..<size { ink((cellWidth - size) / 2 + column, cellHeight / 2 - size / 2 + row) }
            }
        }
        if overline {
            // A bar just above the top of the lower-case letters, one pixel in from each side.
            let row = max(0, cellHeight / 4 - 1)
            for column in 1..<(cellWidth - 1) { ink(column, row) }
        }
    }

    /// The font code for characters gd can draw directly: printable ASCII, or a Latin-2 byte.
    private static func fontCode(_ character: Character) -> Int? {
        if let ascii = character.asciiValue { return (32...126).contains(ascii) ? Int(ascii) : nil }
        guard let bytes = String(character).data(using: .isoLatin2), bytes.count == 1, bytes[0] >= 0xA0 else {
            return nil
        }
        return Int(bytes[0])
    }

    /// Characters without a glyph, and what to draw instead.
    private static let lookalikes: [Character: String] = [
        // Greek letters of the diffusion formulas, by the Latin letter they resemble.
        "α": "a", "β": "ß", "γ": "y", "δ": "d", "ε": "e", "ϵ": "e", "η": "n", "ι": "i", "κ": "k",
        "μ": "u", "ν": "v", "ο": "o", "π": "pi", "ρ": "p", "σ": "s", "τ": "t", "υ": "u", "χ": "x",
        "ω": "w",
        // Sub- and superscripts, as plain digits and letters.
        "₀": "0", "₁": "1", "₂": "2", "₃": "3", "₄": "4", "₅": "5", "₆": "6", "₇": "7", "₈": "8", "₉": "9",
        "ₜ": "t", "⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7", "⁸": "8",
        "⁹": "9", "⁻": "-", "ⁿ": "n",
        // Punctuation and mathematical signs.
        "−": "-", "–": "-", "—": "-", "…": "...", "≈": "~", "∼": "~", "≤": "<=", "≥": ">=", "≠": "!=",
        "→": "->", "←": "<-", "±": "+-", "∞": "inf", "‘": "'", "’": "'", "“": "\"", "”": "\"",
    ]
}
