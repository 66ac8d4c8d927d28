/// Colours and font of a caption bar.
public struct CaptionStyle: Sendable {
    /// Bar colour; the default is a near-black that reads as "frame", not "image".
    public var background: RGBColor
    /// Text colour.
    public var foreground: RGBColor
    /// `nil` picks `BitmapFont.forImageWidth` of the captioned image.
    public var font: BitmapFont?
    /// Centre each line instead of aligning it left.
    public var centered: Bool

    public init(background: RGBColor = RGBColor(hex: 0x1B1B1F), foreground: RGBColor = RGBColor(hex: 0xF2F2F2),
                font: BitmapFont? = nil, centered: Bool = false) {
        self.background = background
        self.foreground = foreground
        self.font = font
        self.centered = centered
    }

    /// Light text on a dark bar.
    public static let dark = CaptionStyle()
    /// Dark text on white, to sit under plots.
    public static let light = CaptionStyle(background: .white, foreground: RGBColor(hex: 0x222222), centered: true)
}

/// Where `captioned` puts the bar.
public enum CaptionPlacement: Sendable {
    case above, below
}

extension RGBImage {
    /// A copy with a caption bar added above or below; the picture itself is not covered.
    ///
    /// Text wraps at word boundaries to the image width, and `\n` starts a new line. The font is
    /// chosen from the image width (see `BitmapFont.forImageWidth`), so the same call reads well
    /// on a 64 px thumbnail and on a 1024 px render.
    ///
    /// ```swift
    /// let frame = RGBImage(tensor: decoded).captioned("step 10 / 50   t = 801")
    /// ```
    public func captioned(_ text: String, placement: CaptionPlacement = .below,
                          style: CaptionStyle = .dark) -> RGBImage {
        let font = style.font ?? BitmapFont.forImageWidth(width)
        let padding = Self.captionPadding(for: font)
        let lines = font.wrap(text, toWidth: max(1, width - 2 * padding.horizontal))
        let barHeight = Self.textBlockHeight(lines: lines.count, font: font) + 2 * padding.vertical

        var output = RGBImage(width: width, height: height + barHeight, color: style.background)
        let barTop = placement == .above ? 0 : height
        output.paste(self, x: 0, y: placement == .above ? barHeight : 0)
        for (index, line) in lines.enumerated() {
            let y = barTop + padding.vertical + index * font.lineHeight
            if style.centered {
                output.drawText(line, centerX: width / 2, y: y, font: font, color: style.foreground)
            } else {
                output.drawText(line, x: padding.horizontal, y: y, font: font, color: style.foreground)
            }
        }
        return output
    }

    /// Space around caption text: about one character to the sides, a third of a line above and below.
    static func captionPadding(for font: BitmapFont) -> (horizontal: Int, vertical: Int) {
        (max(3, font.characterWidth), max(3, font.characterHeight / 3))
    }

    /// Height of `lines` lines of text: full line pitch between them, no extra air after the last.
    static func textBlockHeight(lines: Int, font: BitmapFont) -> Int {
        lines == 0 ? 0 : (lines - 1) * font.lineHeight + font.characterHeight
    }
}
