import Foundation
import Testing
import FrameExport

struct GIFTests {
    private let colors = [RGBColor(220, 30, 30), RGBColor(30, 180, 60), RGBColor(40, 60, 220), RGBColor(128, 128, 128)]
    private let delays = [5, 10, 20, 150]

    private func solidFrames() -> AnimatedGIF {
        var gif = AnimatedGIF()
        for (color, delay) in zip(colors, delays) {
            gif.addFrame(RGBImage(width: 16, height: 12, color: color), delay: delay)
        }
        return gif
    }

    @Test func framesDelaysAndLooping() throws {
        let parsed = try GIFFileParser([UInt8](solidFrames().encoded()))
        #expect(parsed.width == 16 && parsed.height == 12)
        #expect(parsed.frames.count == 4)
        #expect(parsed.delays == delays)
        #expect(parsed.loopCount == 0)  // NETSCAPE2.0 with count 0: forever
        #expect(!parsed.hasGlobalColorTable)
        #expect(parsed.frames.allSatisfy { !$0.localColorTable.isEmpty })
    }

    @Test func solidFramesKeepTheirColours() throws {
        // The quantizer works on 5-6-5 bit colour cells, so a flat colour may move by a few
        // levels; every pixel of a frame must still be that frame's colour within 8.
        let parsed = try GIFFileParser([UInt8](solidFrames().encoded()))
        for (frame, color) in zip(parsed.frames, colors) {
            let expected = RGBImage(width: 16, height: 12, color: color)
            #expect(maxChannelDifference(frame.image, expected) <= 8, "frame colour \(frame.image[0, 0]) vs \(color)")
        }
    }

    @Test func detailedFrameSurvivesQuantization() throws {
        // A frame with far more than 256 colours: dithering keeps the average close to the source.
        let source = smoothPicture(width: 48, height: 40)
        var gif = AnimatedGIF()
        gif.addFrame(source, delay: 10)
        let frame = try #require(try GIFFileParser([UInt8](gif.encoded())).frames.first)
        #expect(frame.width == 48 && frame.height == 40)
        let mean = Double(zip(frame.image.pixels, source.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +))
            / Double(source.pixels.count)
        #expect(mean < 4, "mean channel error \(mean)")
    }

    @Test func loopingOptions() throws {
        var once = solidFrames()
        once.looping = .playOnce
        #expect(try GIFFileParser([UInt8](once.encoded())).loopCount == nil)

        var three = solidFrames()
        three.looping = .repeatCount(3)
        #expect(try GIFFileParser([UInt8](three.encoded())).loopCount == 3)
    }

    @Test func writesAFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/anim.gif"
        try solidFrames().write(to: path)
        let parsed = try GIFFileParser([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(parsed.frames.count == 4)
        #expect(try directoryListing(directory) == ["anim.gif"])
    }

    @Test func invalidAnimationsAreRejected() {
        #expect(throws: FrameExportError.invalidArgument("an animated GIF needs at least one frame")) {
            try AnimatedGIF().encoded()
        }
        var mixed = AnimatedGIF()
        mixed.addFrame(RGBImage(width: 8, height: 8))
        mixed.addFrame(RGBImage(width: 8, height: 9))
        let error = #expect(throws: FrameExportError.self) { try mixed.encoded() }
        #expect(error?.description.contains("GIF frame 1 is 8x9 but frame 0 is 8x8") == true)

        var slow = AnimatedGIF()
        slow.addFrame(RGBImage(width: 2, height: 2), delay: 70_000)
        #expect(throws: FrameExportError.self) { try slow.encoded() }
    }
}
