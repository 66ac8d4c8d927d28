import _CLibGD

/// One of libgd's built-in bitmap fonts, optionally enlarged by a whole number.
///
/// Each gd font is a table of monospaced glyphs, one byte per pixel (non-zero = ink), stored in
/// the C struct `gdFont`: glyph `c` starts at `data[(c - offset) * w * h]` and is read row by row.
/// We read those tables directly and draw into an `RGBImage`, so text needs no gd image at all.
/// Enlarging by `scale` turns every glyph pixel into a `scale x scale` block: the text stays crisp
/// on a 1024-pixel image, where the largest native font (9x15) would be too small to read.
///
/// ASCII and Latin-2 characters use the font's own glyphs; Greek letters and maths symbols are
/// approximated (`ᾱ` is drawn as `a` with a bar over it), see `Glyph`.
///
/// ```swift
/// let font = BitmapFont.forImageWidth(512)            // large, 8x16 pixels per character
/// var image = RGBImage(width: 512, height: 40, color: .black)
/// image.drawText("step 25 of 50", x: 8, y: 12, font: font, color: .white)
/// ```
public struct BitmapFont: Equatable, Sendable {
    /// gd's five fonts, from smallest to largest, with their glyph size in pixels.
    public enum Face: Sendable, CaseIterable {
        case tiny        // 5x8
        case small       // 6x13
        case mediumBold  // 7x13
        case large       // 8x16
        case giant       // 9x15, bold
    }

    public var face: Face
    /// Each glyph pixel becomes a `scale x scale` square.
    public var scale: Int

    public init(_ face: Face, scale: Int = 1) {
        precondition(scale >= 1, "font scale must be at least 1")
        self.face = face
        self.scale = scale
    }

    /// The font for captions and labels on an image (or cell) `width` pixels wide.
    ///
    /// The rule aims at roughly 40-65 characters per line, a comfortable reading width:
    /// under 160 px the tiny font (a 64 px thumbnail still fits 12 characters), under 320 px the
    /// small one, from there the large 8x16 font, doubled at 1024 px and tripled at 1536 px.
    public static func forImageWidth(_ width: Int) -> BitmapFont {
        switch width {
        case ..<160: return BitmapFont(.tiny)
        case ..<320: return BitmapFont(.small)
        default: return BitmapFont(.large, scale: max(1, width / 512))
        }
    }

    /// The C font table; gd keeps these as static data, so the pointer is valid forever.
    private var table: gdFont {
        switch face {
        case .tiny: return gdFontGetTiny().pointee
        case .small: return gdFontGetSmall().pointee
        case .mediumBold: return gdFontGetMediumBold().pointee
        case .large: return gdFontGetLarge().pointee
        case .giant: return gdFontGetGiant().pointee
        }
    }

    /// Horizontal advance of one character, in image pixels.
    public var characterWidth: Int { Int(table.w) * scale }
    /// Height of one character cell, in image pixels.
    public var characterHeight: Int { Int(table.h) * scale }
    /// Distance between the tops of two lines: the cell plus a little air.
    public var lineHeight: Int { characterHeight + 2 * scale }

    /// Width in pixels of one line of text (the fonts are monospaced).
    public func width(of text: String) -> Int {
        Glyph.glyphs(for: text).count * characterWidth
    }

    /// Breaks `text` into lines no wider than `maxWidth` pixels.
    ///
    /// Explicit `\n` always start a new line. Otherwise words are packed greedily, keeping the
    /// spaces between them as written (captions use runs of spaces as separators); a line break
    /// swallows the spaces where it happens. A single word longer than a line is cut into pieces.
    /// Always returns at least one line.
    public func wrap(_ text: String, toWidth maxWidth: Int) -> [String] {
        let perLine = max(1, maxWidth / characterWidth)  // character cells per line
        func cells(_ text: Substring) -> Int { Glyph.glyphs(for: String(text)).count }
        var lines: [String] = []
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = ""
            var atParagraphStart = true
            for (spaces, wholeWord) in Self.wordsWithSpacing(paragraph) {
                var word = wholeWord
                // Cut words that could never fit on a line of their own.
                while cells(word) > perLine {
                    if !line.isEmpty { lines.append(line); line = "" }
                    var piece = word.prefix(1)
                    while cells(word.prefix(piece.count + 1)) <= perLine { piece = word.prefix(piece.count + 1) }
                    lines.append(String(piece))
                    word = word.dropFirst(piece.count)
                    atParagraphStart = false
                }
                if word.isEmpty { continue }
                let gap = String(repeating: " ", count: spaces)
                if line.isEmpty {
                    // Keep indentation only where the paragraph itself starts.
                    line = (atParagraphStart && spaces + cells(word) <= perLine ? gap : "") + word
                } else if cells(Substring(line)) + spaces + cells(word) <= perLine {
                    line += gap + word
                } else {
                    lines.append(line)
                    line = String(word)
                }
                atParagraphStart = false
            }
            lines.append(line)
        }
        return lines
    }

    /// Splits a line into words, each with the number of spaces before it.
    private static func wordsWithSpacing(_ text: Substring) -> [(spaces: Int, word: Substring)] {
        var result: [(Int, Substring)] = []
        var spaces = 0
        var wordStart: Substring.Index?
        for index in text.indices {
            if text[index] == " " {
                if let start = wordStart { result.append((spaces, text[start..<index])); spaces = 0; wordStart = nil }
                spaces += 1
            } else if wordStart == nil {
                wordStart = index
            }
        }
        if let start = wordStart { result.append((spaces, text[start...])) }
        return result
    }

    /// Calls `ink(column, row)` for every inked pixel of `text` laid out on one line starting at
    /// `(0, 0)`, in unscaled font pixels. Drawing code maps these to the image, scaled and maybe rotated.
    func forEachInkedPixel(of text: String, _ ink: (Int, Int) -> Void) {
        let font = table
        let glyphWidth = Int(font.w), glyphHeight = Int(font.h)
        let first = Int(font.offset), count = Int(font.nchars)
        for (index, glyph) in Glyph.glyphs(for: text).enumerated() {
            let left = index * glyphWidth
            if case .fontCharacter(let code) = glyph.shape, code >= first && code < first + count {
                let start = (code - first) * glyphWidth * glyphHeight
                for row in 0..<glyphHeight {
                    for column in 0..<glyphWidth where font.data[start + row * glyphWidth + column] != 0 {
                        ink(left + column, row)
                    }
                }
            }
            glyph.forEachHandDrawnPixel(cellWidth: glyphWidth, cellHeight: glyphHeight) { ink(left + $0, $1) }
        }
    }
}

extension RGBImage {
    /// Draws one line of text with its top-left corner at `(x, y)`; parts outside the image are cut.
    public mutating func drawText(_ text: String, x: Int, y: Int, font: BitmapFont, color: RGBColor) {
        let scale = font.scale
        font.forEachInkedPixel(of: text) { column, row in
            fillRectangle(x: x + column * scale, y: y + row * scale, width: scale, height: scale, color: color)
        }
    }

    /// Draws one line of text turned 90 degrees counterclockwise (reading upwards), as on a
    /// vertical axis. `(x, y)` is the top-left corner of the rotated block, which is
    /// `font.characterHeight` wide and `font.width(of: text)` tall.
    mutating func drawTextRotatedCounterclockwise(_ text: String, x: Int, y: Int,
                                                  font: BitmapFont, color: RGBColor) {
        let scale = font.scale
        let length = font.width(of: text) / scale  // in font pixels
        // A glyph pixel at (column, row) of the horizontal text goes to (row, length - 1 - column).
        font.forEachInkedPixel(of: text) { column, row in
            fillRectangle(x: x + row * scale, y: y + (length - 1 - column) * scale,
                          width: scale, height: scale, color: color)
        }
    }

    /// Draws text horizontally centred on `centerX`, top at `y`.
    mutating func drawText(_ text: String, centerX: Int, y: Int, font: BitmapFont, color: RGBColor) {
        drawText(text, x: centerX - font.width(of: text) / 2, y: y, font: font, color: color)
    }
}
