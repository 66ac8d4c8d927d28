import Testing
import FrameExport

struct ResizeTests {
    @Test func bilinearEnlargementInterpolates() {
        // Two pixels, black and white, to four: output centres fall at source 0.25, 0.75, 1.25, 1.75.
        // The outer two see only their nearest pixel; the inner two mix 3:1 -> 63.75 and 191.25.
        let image = RGBImage(width: 2, height: 1, pixels: [0, 0, 0, 255, 255, 255])
        let wide = image.resized(width: 4, height: 1)
        #expect((0..<4).map { wide[$0, 0].red } == [0, 64, 191, 255])
    }

    @Test func bilinearShrinkingAveragesEverything() {
        // A one-pixel checkerboard halved must become flat grey, not a sample of one colour.
        var board = RGBImage(width: 16, height: 16)
        for y in 0..<16 { for x in 0..<16 where (x + y) % 2 == 0 { board[x, y] = .white } }
        let half = board.resized(width: 8, height: 8)
        #expect(half.pixels.allSatisfy { (120...135).contains($0) })
    }

    @Test func flatColourStaysFlat() {
        let flat = RGBImage(width: 13, height: 7, color: RGBColor(12, 34, 56))
        #expect(flat.resized(width: 29, height: 3) == RGBImage(width: 29, height: 3, color: RGBColor(12, 34, 56)))
    }

    @Test func nearestCopiesBlocks() {
        let image = testPattern(width: 3, height: 2)
        let big = image.resized(width: 9, height: 6, filter: .nearest)
        for y in 0..<6 { for x in 0..<9 { #expect(big[x, y] == image[x / 3, y / 3]) } }
    }

    @Test func sizesForTheModel() {
        let photo = RGBImage(width: 513, height: 771)
        let fitted = photo.resizedToMultiple(of: 8)
        #expect(fitted.width == 512 && fitted.height == 768)

        let thumb = RGBImage(width: 400, height: 200).thumbnail(maxSide: 100)
        #expect(thumb.width == 100 && thumb.height == 50)
        let small = testPattern(width: 20, height: 10)
        #expect(small.thumbnail(maxSide: 100) == small)

        let square = testPattern(width: 100, height: 50).aspectFilled(width: 64, height: 64)
        #expect(square.width == 64 && square.height == 64)
    }

    @Test func cropTakesTheRightPixels() {
        let image = testPattern(width: 10, height: 8)
        let crop = image.cropped(x: 3, y: 2, width: 4, height: 5)
        #expect(crop.width == 4 && crop.height == 5)
        for y in 0..<5 { for x in 0..<4 { #expect(crop[x, y] == image[x + 3, y + 2]) } }
    }
}
