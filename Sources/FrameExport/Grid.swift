/// Colours, spacing and fonts of grids and side-by-side panels.
public struct LayoutStyle: Sendable {
    public var background: RGBColor
    public var textColor: RGBColor
    /// Pixels between images and around the edge; `nil` means 1/64 of the image width, at least 2.
    public var gap: Int?
    /// Font of the labels; `nil` picks `BitmapFont.forImageWidth` of one image.
    public var labelFont: BitmapFont?

    public init(background: RGBColor = RGBColor(hex: 0x1B1B1F), textColor: RGBColor = RGBColor(hex: 0xF2F2F2),
                gap: Int? = nil, labelFont: BitmapFont? = nil) {
        self.background = background
        self.textColor = textColor
        self.gap = gap
        self.labelFont = labelFont
    }

    /// Light text on a near-black background, the same look as `CaptionStyle.dark`.
    public static let dark = LayoutStyle()
}

extension RGBImage {
    /// Arranges equal-size images in rows of `columns`, with optional labels under each and a title.
    ///
    /// Layout, with `g` the gap: every image sits in a cell `width` wide and `height + label` tall,
    /// cells are `g` apart and `g` from the edges, and the title block (if any) goes on top. So
    /// without labels or title the result is exactly
    /// `columns * w + (columns + 1) * g` by `rows * h + (rows + 1) * g`.
    /// Rows are filled left to right; an incomplete last row stays empty on the right.
    ///
    /// ```swift
    /// let sheet = RGBImage.grid(samples, columns: 4,
    ///                           labels: seeds.map { "seed \($0)" }, title: "a watercolor fox")
    /// ```
    public static func grid(_ images: [RGBImage], columns: Int, labels: [String]? = nil,
                            title: String? = nil, style: LayoutStyle = .dark) -> RGBImage {
        precondition(!images.isEmpty, "a grid needs at least one image")
        precondition(columns > 0, "a grid needs at least one column")
        precondition(labels == nil || labels!.count == images.count,
                     "got \(labels?.count ?? 0) labels for \(images.count) images")
        let cellWidth = images[0].width, cellHeight = images[0].height
        precondition(images.allSatisfy { $0.width == cellWidth && $0.height == cellHeight },
                     "all grid images must be \(cellWidth)x\(cellHeight); use sideBySide for mixed sizes")

        let columns = min(columns, images.count)
        let rows = (images.count + columns - 1) / columns
        let gap = style.gap ?? max(2, cellWidth / 64)
        let totalWidth = columns * cellWidth + (columns + 1) * gap

        let labelFont = style.labelFont ?? BitmapFont.forImageWidth(cellWidth)
        let wrapped = labels?.map { labelFont.wrap($0, toWidth: cellWidth) }
        let labelHeight = wrapped.map { labelBlockHeight(maxLines: $0.map(\.count).max() ?? 0, font: labelFont) } ?? 0

        let titleBlock = title.map { TitleBlock($0, width: totalWidth, gap: gap) }
        let top = titleBlock?.height ?? 0
        let rowPitch = cellHeight + labelHeight + gap
        var output = RGBImage(width: totalWidth, height: top + rows * rowPitch + gap, color: style.background)

        titleBlock?.draw(into: &output, color: style.textColor)
        for (index, image) in images.enumerated() {
            let x = gap + (index % columns) * (cellWidth + gap)
            let y = top + gap + (index / columns) * rowPitch
            output.paste(image, x: x, y: y)
            if let lines = wrapped?[index] {
                output.drawLabel(lines, centerX: x + cellWidth / 2, top: y + cellHeight, font: labelFont,
                                 color: style.textColor)
            }
        }
        return output
    }

    /// Puts images of any sizes next to each other, each with an optional label underneath.
    ///
    /// Images are centred vertically in a row as tall as the tallest; labels start on a common
    /// line below that row, so they stay aligned. Useful for "input | noised | denoised" panels.
    ///
    /// ```swift
    /// let panel = RGBImage.sideBySide([input, latentPreview, output],
    ///                                 labels: ["input 512x512", "latent 64x64", "decoded"])
    /// ```
    public static func sideBySide(_ images: [RGBImage], labels: [String]? = nil, title: String? = nil,
                                  style: LayoutStyle = .dark) -> RGBImage {
        precondition(!images.isEmpty, "sideBySide needs at least one image")
        precondition(labels == nil || labels!.count == images.count,
                     "got \(labels?.count ?? 0) labels for \(images.count) images")
        let widest = images.map(\.width).max()!, tallest = images.map(\.height).max()!
        let gap = style.gap ?? max(2, widest / 64)
        let totalWidth = images.map(\.width).reduce(0, +) + (images.count + 1) * gap

        // One font for every label, sized for an average image, so the labels look like a set.
        let averageWidth = images.map(\.width).reduce(0, +) / images.count
        let labelFont = style.labelFont ?? BitmapFont.forImageWidth(averageWidth)
        let wrapped = labels.map { zip($0, images).map { labelFont.wrap($0, toWidth: max($1.width, 8 * labelFont.characterWidth)) } }
        let labelHeight = wrapped.map { labelBlockHeight(maxLines: $0.map(\.count).max() ?? 0, font: labelFont) } ?? 0

        let titleBlock = title.map { TitleBlock($0, width: totalWidth, gap: gap) }
        let top = titleBlock?.height ?? 0
        var output = RGBImage(width: totalWidth, height: top + gap + tallest + labelHeight + gap,
                              color: style.background)
        titleBlock?.draw(into: &output, color: style.textColor)
        var x = gap
        for (index, image) in images.enumerated() {
            output.paste(image, x: x, y: top + gap + (tallest - image.height) / 2)
            if let lines = wrapped?[index] {
                output.drawLabel(lines, centerX: x + image.width / 2, top: top + gap + tallest,
                                 font: labelFont, color: style.textColor)
            }
            x += image.width + gap
        }
        return output
    }

    /// Height reserved under each image for labels: some air, then the text.
    private static func labelBlockHeight(maxLines: Int, font: BitmapFont) -> Int {
        maxLines == 0 ? 0 : labelSpacing(font) + textBlockHeight(lines: maxLines, font: font)
    }

    private static func labelSpacing(_ font: BitmapFont) -> Int { max(3, font.characterHeight / 3) }

    /// Draws centred label lines starting a little below `top`.
    private mutating func drawLabel(_ lines: [String], centerX: Int, top: Int, font: BitmapFont, color: RGBColor) {
        for (index, line) in lines.enumerated() {
            drawText(line, centerX: centerX, y: top + Self.labelSpacing(font) + index * font.lineHeight,
                     font: font, color: color)
        }
    }
}

/// A title line (or lines) across the top of a grid or panel, in the bold giant font.
package struct TitleBlock {
    package let lines: [String]
    package let font: BitmapFont
    package let gap: Int
    package let width: Int

    package init(_ text: String, width: Int, gap: Int) {
        // The giant face is bold; scaled like caption fonts, by total width.
        font = BitmapFont(.giant, scale: max(1, width / 768))
        lines = font.wrap(text, toWidth: max(1, width - 2 * gap))
        self.gap = gap
        self.width = width
    }

    /// Title text plus padding; the first image row starts right after it (then its own gap).
    package var height: Int { RGBImage.textBlockHeight(lines: lines.count, font: font) + 2 * max(gap, font.characterHeight / 2) }

    package func draw(into image: inout RGBImage, color: RGBColor) {
        let top = max(gap, font.characterHeight / 2)
        for (index, line) in lines.enumerated() {
            image.drawText(line, centerX: width / 2, y: top + index * font.lineHeight, font: font, color: color)
        }
    }
}
