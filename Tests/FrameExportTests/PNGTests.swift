import Foundation
import Testing
import FrameExport

struct PNGTests {
    @Test func writeThenReadGivesTheSamePixels() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/pattern.png"
        let image = testPattern(width: 37, height: 23)  // odd sizes catch row-stride mistakes

        try image.writePNG(to: path)
        let read = try RGBImage(contentsOfFile: path)
        #expect(read.width == 37 && read.height == 23)
        #expect(read == image)
    }

    @Test func textNotesRoundTripInOrder() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/fox.png"
        let notes = [
            PNGTextEntry(key: "parameters", value: "prompt: a red fox in snow, seed: 42, steps: 25"),
            PNGTextEntry(key: "Software", value: "StableDiffusionLessons"),
            PNGTextEntry(key: "prompt", value: "un renard roux, 雪の中の狐"),  // needs UTF-8: iTXt
            PNGTextEntry(key: "multi line", value: "line 1\nline 2"),
        ]
        let image = testPattern(width: 8, height: 8)
        try image.writePNG(to: path, text: notes)

        #expect(try readPNGText(path) == notes)
        // The notes must not disturb the image data.
        #expect(try RGBImage(contentsOfFile: path) == image)
        // Plain ASCII goes into tEXt (readable everywhere), the UTF-8 value into iTXt.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let chunkTypes = try PNGChunks.chunks(in: bytes, name: path).map(\.type)
        #expect(chunkTypes.first == "IHDR" && chunkTypes.last == "IEND")
        #expect(chunkTypes.filter { $0 == "tEXt" }.count == 3)
        #expect(chunkTypes.filter { $0 == "iTXt" }.count == 1)
    }

    @Test func keyValueLiteralKeepsOrder() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/literal.png"
        try RGBImage(width: 2, height: 2).writePNG(to: path, text: ["seed": "42", "steps": "25"])
        #expect(try readPNGText(path) == [PNGTextEntry(key: "seed", value: "42"),
                                           PNGTextEntry(key: "steps", value: "25")])
    }

    @Test func invalidKeysAreRejected() {
        for key in ["", " leading", "trailing ", "double  space", String(repeating: "k", count: 80), "clé"] {
            #expect(throws: FrameExportError.self) {
                try RGBImage(width: 1, height: 1).pngData(text: [PNGTextEntry(key: key, value: "v")])
            }
        }
    }

    @Test func crc32MatchesTheStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        // The CRC of an IEND chunk is the same in every PNG file.
        #expect(CRC32.checksum(Array("IEND".utf8)) == 0xAE42_6082)
    }

    @Test func readerDetectsADamagedTextChunk() throws {
        var bytes = [UInt8](try RGBImage(width: 2, height: 2).pngData(text: [PNGTextEntry(key: "k", value: "value")]))
        let marker = Array("value".utf8)
        let index = try #require((0...(bytes.count - marker.count)).first {
            Array(bytes[$0..<($0 + marker.count)]) == marker
        })
        bytes[index] ^= 0x20  // "value" -> "Value": the chunk's CRC no longer matches
        #expect(throws: FrameExportError.corruptImage(path: "damaged.png", format: "PNG",
                                                      reason: "the tEXt chunk fails its CRC check")) {
            try PNGChunks.textEntries(in: bytes, name: "damaged.png")
        }
    }

    // MARK: - PNG variants the writer never produces

    @Test func readsRGBAAndCompositesOverWhite() throws {
        // Opaque red, fully transparent black, half-transparent black.
        let png = PNGFixtures.png(width: 3, height: 1, bitDepth: 8, colorType: .rgba,
                                  rows: [[255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 128]])
        let image = try RGBImage(decoding: Data(png))
        // (0 * 128 + 255 * 127) / 255 = 127.0 -> 127
        #expect(image.pixels == [255, 0, 0, 255, 255, 255, 127, 127, 127])
    }

    @Test func readsGrayAndGrayAlpha() throws {
        let gray = PNGFixtures.png(width: 3, height: 1, bitDepth: 8, colorType: .gray, rows: [[0, 100, 255]])
        #expect(try RGBImage(decoding: Data(gray)).pixels == [0, 0, 0, 100, 100, 100, 255, 255, 255])

        let grayAlpha = PNGFixtures.png(width: 2, height: 1, bitDepth: 8, colorType: .grayAlpha,
                                        rows: [[50, 255, 50, 0]])
        #expect(try RGBImage(decoding: Data(grayAlpha)).pixels == [50, 50, 50, 255, 255, 255])
    }

    @Test func readsPaletteWithTransparency() throws {
        // Index 0 = teal, index 1 = orange but fully transparent (tRNS), at 8 bits per index.
        let png = PNGFixtures.png(width: 3, height: 1, bitDepth: 8, colorType: .palette, rows: [[0, 1, 0]],
                                  palette: [0, 128, 128, 255, 128, 0], transparency: [255, 0])
        #expect(try RGBImage(decoding: Data(png)).pixels == [0, 128, 128, 255, 255, 255, 0, 128, 128])
    }

    @Test func readsOneBitPalette() throws {
        // 1-bit indices, packed 8 per byte, most significant bit first: 1,0,1,1 -> 0b1011_0000.
        let png = PNGFixtures.png(width: 4, height: 1, bitDepth: 1, colorType: .palette, rows: [[0b1011_0000]],
                                  palette: [0, 0, 0, 255, 255, 0])
        #expect(try RGBImage(decoding: Data(png)).pixels == [255, 255, 0, 0, 0, 0, 255, 255, 0, 255, 255, 0])
    }

    @Test func readsSixteenBitRGB() throws {
        // 16-bit samples, big-endian: white, black, and 0x8080 which scales to 128 in 8 bits.
        let png = PNGFixtures.png(width: 3, height: 1, bitDepth: 16, colorType: .rgb,
                                  rows: [[255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]])
        let image = try RGBImage(decoding: Data(png))
        #expect(image[0, 0] == .white)
        #expect(image[1, 0] == .black)
        #expect(image[2, 0] == RGBColor(128, 128, 128))
    }
}
