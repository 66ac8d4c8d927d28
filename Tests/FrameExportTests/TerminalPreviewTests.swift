import Testing
import FrameExport

struct TerminalPreviewTests {
    @Test func solidImageUsesItsColourForBothHalves() {
        let preview = RGBImage(width: 8, height: 8, color: RGBColor(10, 200, 30)).terminalPreview(columns: 4)
        let lines = preview.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines.last == "")        // 4x4 pixels -> 2 text lines, final newline
        let cell = "\u{1B}[38;2;10;200;30m\u{1B}[48;2;10;200;30m▀"
        #expect(lines[0] == String(repeating: cell, count: 4) + "\u{1B}[0m")
        #expect(lines[1] == lines[0])
    }

    @Test func topPixelIsForegroundBottomIsBackground() {
        var image = RGBImage(width: 2, height: 2, color: RGBColor(0, 0, 255))
        image.fillRectangle(x: 0, y: 0, width: 2, height: 1, color: RGBColor(255, 0, 0))
        let preview = image.terminalPreview(columns: 2)
        #expect(preview == String(repeating: "\u{1B}[38;2;255;0;0m\u{1B}[48;2;0;0;255m▀", count: 2) + "\u{1B}[0m\n")
    }

    @Test func keepsTheAspectRatio() {
        // 48 columns of a 2:1 landscape image: 24 pixel rows, 12 text lines.
        let preview = RGBImage(width: 200, height: 100).terminalPreview()
        #expect(preview.split(separator: "\n").count == 12)
        #expect(preview.split(separator: "\n").allSatisfy { $0.filter { $0 == "▀" }.count == 48 })
    }
}
