import Testing
import FrameExport

struct CompositionTests {
    private let background = LayoutStyle.dark.background
    private let text = LayoutStyle.dark.textColor

    /// How many pixels inside a rectangle have exactly `color`.
    private func count(_ color: RGBColor, in image: RGBImage, x: Range<Int>, y: Range<Int>) -> Int {
        y.reduce(0) { total, row in total + x.filter { image[$0, row] == color }.count }
    }

    @Test func gridSizeAndPlacement() {
        let colors = (0..<5).map { RGBColor(UInt8(40 * $0), 100, 200) }
        let images = colors.map { RGBImage(width: 32, height: 24, color: $0) }
        let grid = RGBImage.grid(images, columns: 3, style: LayoutStyle(gap: 4))
        // 3 * 32 + 4 gaps of 4 wide; 2 rows * 24 + 3 gaps of 4 tall.
        #expect(grid.width == 112 && grid.height == 60)
        #expect(grid[4, 4] == colors[0])                  // first cell starts after one gap
        #expect(grid[4 + 36, 4] == colors[1])             // next cell: 32 + 4 further right
        #expect(grid[4 + 36 + 31, 4 + 28 + 23] == colors[4])  // last pixel of image 4 (row 1, column 1)
        #expect(grid[3, 3] == background)                 // margin
        #expect(grid[4 + 72, 4 + 28] == background)       // empty sixth cell
    }

    @Test func gridLabelsAndTitleAddRoom() {
        let images = (0..<4).map { _ in RGBImage(width: 64, height: 64, color: .white) }
        let plain = RGBImage.grid(images, columns: 2, style: LayoutStyle(gap: 2))
        let labelled = RGBImage.grid(images, columns: 2, labels: ["seed 1", "seed 2", "seed 3", "seed 4"],
                                     title: "four seeds", style: LayoutStyle(gap: 2))
        #expect(labelled.width == plain.width)
        #expect(labelled.height > plain.height)
        // Label text is drawn in the text colour under the first image, within its column.
        let titleHeight = TitleBlock("four seeds", width: labelled.width, gap: 2).height
        let labelTop = titleHeight + 2 + 64
        #expect(count(text, in: labelled, x: 2..<66, y: labelTop..<(labelTop + 12)) > 10)
        // The title is drawn in the text colour above the first row.
        #expect(count(text, in: labelled, x: 0..<labelled.width, y: 0..<titleHeight) > 20)
    }

    @Test func sideBySideCentresMixedSizes() {
        let tall = RGBImage(width: 32, height: 32, color: .white)
        let wide = RGBImage(width: 64, height: 16, color: RGBColor(255, 0, 0))
        let panel = RGBImage.sideBySide([tall, wide], style: LayoutStyle(gap: 2))
        #expect(panel.width == 32 + 64 + 3 * 2 && panel.height == 2 + 32 + 2)
        #expect(panel[2, 2] == .white)
        #expect(panel[36, 2 + 8] == RGBColor(255, 0, 0))    // wide image centred: (32 - 16) / 2 = 8 lower
        #expect(panel[36, 2 + 7] == background)
        let labelled = RGBImage.sideBySide([tall, wide], labels: ["input", "latent"], style: LayoutStyle(gap: 2))
        #expect(labelled.height > panel.height)
    }

    @Test func captionAddsABarBelowOrAbove() {
        let image = testPattern(width: 64, height: 40)
        let below = image.captioned("t = 999")
        let font = BitmapFont.forImageWidth(64)
        let bar = font.characterHeight + 2 * max(3, font.characterHeight / 3)
        #expect(below.width == 64 && below.height == 40 + bar)
        #expect(below.cropped(x: 0, y: 0, width: 64, height: 40) == image)
        #expect(below[63, 40 + bar - 1] == CaptionStyle.dark.background)
        #expect(count(CaptionStyle.dark.foreground, in: below, x: 0..<64, y: 40..<(40 + bar)) > 10)

        let above = image.captioned("t = 999", placement: .above)
        #expect(above.cropped(x: 0, y: bar, width: 64, height: 40) == image)
    }

    @Test func longCaptionsWrap() {
        // 64 px wide, tiny 5 px font, 5 px padding each side: 54 px, so 10 characters per line.
        let caption = "a long caption that cannot fit on one line of a thumbnail"
        let font = BitmapFont.forImageWidth(64)
        #expect(font.wrap(caption, toWidth: 54)
                == ["a long", "caption", "that", "cannot fit", "on one", "line of a", "thumbnail"])
        let image = RGBImage(width: 64, height: 64)
        #expect(image.captioned(caption).height - image.captioned("short").height == 6 * font.lineHeight)
    }

    @Test func fontsScaleWithImageWidth() {
        #expect(BitmapFont.forImageWidth(64) == BitmapFont(.tiny))
        #expect(BitmapFont.forImageWidth(256) == BitmapFont(.small))
        #expect(BitmapFont.forImageWidth(512) == BitmapFont(.large))
        #expect(BitmapFont.forImageWidth(1024) == BitmapFont(.large, scale: 2))
        let large = BitmapFont(.large, scale: 2)
        #expect(large.characterWidth == 16 && large.characterHeight == 32)
        #expect(large.width(of: "seed 42") == 7 * 16)
    }

    @Test func wrappingRules() {
        let font = BitmapFont(.small)  // 6 px per character
        #expect(font.wrap("one two three", toWidth: 48) == ["one two", "three"])  // 8 characters per line
        #expect(font.wrap("first\nsecond", toWidth: 600) == ["first", "second"])
        #expect(font.wrap("abcdefghijkl", toWidth: 30) == ["abcde", "fghij", "kl"])
        #expect(font.wrap("", toWidth: 30) == [""])
        // Runs of spaces are kept inside a line, and swallowed where the line breaks.
        #expect(font.wrap("t = 5   a = 0.3", toWidth: 600) == ["t = 5   a = 0.3"])
        #expect(font.wrap("abc   def", toWidth: 36) == ["abc", "def"])
        // Look-alikes take more than one cell: "π" is drawn as "pi".
        #expect(font.width(of: "2π") == 3 * 6)
    }

    @Test func unicodeIsApproximated() {
        let font = BitmapFont(.large)
        func drawn(_ text: String) -> RGBImage {
            var image = RGBImage(width: 40, height: 20)
            image.drawText(text, x: 0, y: 0, font: font, color: .white)
            return image
        }
        let a = drawn("a"), alphaBar = drawn("ᾱ")
        // "ᾱ" is "a" with a bar over it: all the ink of "a" and then some.
        #expect(alphaBar != a)
        #expect(zip(a.pixels, alphaBar.pixels).allSatisfy { $0 == 0 || $1 == 255 })
        #expect(drawn("α") == a)
        #expect(drawn("x₀ − 1") == drawn("x0 - 1"))
        #expect(drawn("Ω") == drawn("?"))                 // no look-alike: a question mark
        #expect(drawn("é") != drawn("e") && drawn("é") != drawn("?"))  // Latin-2 has its own é
        #expect(drawn("√") != drawn("?") && drawn("·") != drawn("?"))  // drawn by hand
    }

    @Test func textStaysInsideItsCell() {
        var image = RGBImage(width: 40, height: 30)
        let font = BitmapFont(.large)
        image.drawText("Hi", x: 10, y: 5, font: font, color: .white)
        let inked = count(.white, in: image, x: 0..<40, y: 0..<30)
        let insideCell = count(.white, in: image, x: 10..<(10 + 2 * font.characterWidth), y: 5..<(5 + font.characterHeight))
        #expect(inked > 20 && inked == insideCell)
    }
}
