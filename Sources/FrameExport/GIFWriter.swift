import Foundation
import _CLibGD

/// An animated GIF under construction: add frames, then write it.
///
/// GIF is the one animation format every browser, chat app and Markdown viewer plays inline,
/// which makes it ideal for showing a denoising run step by step. Its limit is 256 colours per
/// frame, so each frame gets its own palette ("local colour table") fitted to its content: early
/// frames are noise, late ones a picture, and one palette for all would suit neither.
///
/// Palette choice: libgd's median-cut quantizer (`GD_QUANT_JQUANT`, from libjpeg) picks the 256
/// colours, with Floyd-Steinberg dithering on. The quantizer works on colours rounded to
/// 5-6-5 bits, so without dithering a smooth sky turns into visible stripes; dithering spreads
/// the rounding error to neighbouring pixels and the stripes become fine, even grain. On noise
/// frames dithering makes no visible difference (the content is grain already). libgd's other
/// quantizer, NeuQuant, cannot dither and crashed in `gdImageCreatePaletteFromTrueColor` with
/// libgd 2.3.3, so it is not offered.
///
/// ```swift
/// var gif = AnimatedGIF()                       // loops forever
/// for (step, image) in frames.enumerated() {
///     gif.addFrame(image, delay: step == frames.count - 1 ? 200 : 8)   // hold the last frame 2 s
/// }
/// try gif.write(to: "output/denoising.gif")
/// ```
public struct AnimatedGIF: Sendable {
    /// How often viewers replay the animation (the NETSCAPE2.0 application extension).
    public enum Looping: Equatable, Sendable {
        /// Loop count 0 in the file: repeat forever.
        case forever
        /// No loop extension at all: play once and stop on the last frame.
        case playOnce
        /// The loop count stored in the file, 1...65535. Viewers differ on whether the first
        /// play counts, so `.repeatCount(1)` plays once or twice.
        case repeatCount(Int)
    }

    /// One picture and how long it stays on screen.
    public struct Frame: Equatable, Sendable {
        public var image: RGBImage
        /// In hundredths of a second (the GIF unit), 0...65535. Browsers show delays of 0 or 1
        /// as 10 (0.1 s), so 2 (50 frames per second) is the fastest reliable speed.
        public var delay: Int
    }

    public var looping: Looping
    /// Floyd-Steinberg dithering when reducing frames to 256 colours (see the type's notes).
    public var dithering: Bool
    public private(set) var frames: [Frame] = []

    public init(looping: Looping = .forever, dithering: Bool = true) {
        self.looping = looping
        self.dithering = dithering
    }

    /// Appends a frame shown for `delay` hundredths of a second. All frames must have the size of
    /// the first one (checked when encoding).
    public mutating func addFrame(_ image: RGBImage, delay: Int = 10) {
        frames.append(Frame(image: image, delay: delay))
    }

    /// The complete GIF file.
    ///
    /// libgd writes the file in pieces, each into a buffer it allocates and we free right away:
    /// `gdImageGifAnimBeginPtr` (header and loop extension), `gdImageGifAnimAddPtr` per frame
    /// (delay, palette and LZW-compressed pixels), and `gdImageGifAnimEndPtr` (the trailer byte).
    public func encoded() throws -> Data {
        try validate()
        let loops: Int32
        switch looping {
        case .forever: loops = 0
        case .playOnce: loops = -1  // tells gd to leave the loop extension out
        case .repeatCount(let count): loops = Int32(count)
        }
        var size: Int32 = 0
        var output = Data()
        let first = try paletteImage(frames[0].image)
        // GlobalCM = 0: no global palette; every frame brings its own (LocalCM = 1 below).
        output += try GDImage.takeBuffer(gdImageGifAnimBeginPtr(first.pointer, &size, 0, loops),
                                         size: size, format: "GIF")
        for (index, frame) in frames.enumerated() {
            let image = index == 0 ? first : try paletteImage(frame.image)
            // Offsets 0, 0 and no previous image: every frame is stored whole (gd can crop frames
            // to what changed, but in a diffusion run nearly every pixel changes each step).
            let piece = gdImageGifAnimAddPtr(image.pointer, &size, 1, 0, 0, Int32(frame.delay),
                                             Int32(gdDisposalNone), nil)
            output += try GDImage.takeBuffer(piece, size: size, format: "GIF")
        }
        output += try GDImage.takeBuffer(gdImageGifAnimEndPtr(&size), size: size, format: "GIF")
        return output
    }

    /// Writes the GIF atomically (see `AtomicFile`).
    public func write(to path: String) throws {
        try AtomicFile.write(encoded(), to: path)
    }

    private func validate() throws {
        guard let first = frames.first?.image else {
            throw FrameExportError.invalidArgument("an animated GIF needs at least one frame")
        }
        for (index, frame) in frames.enumerated() {
            guard frame.image.width == first.width && frame.image.height == first.height else {
                throw FrameExportError.invalidArgument(
                    "GIF frame \(index) is \(frame.image.width)x\(frame.image.height) but frame 0 is \(first.width)x\(first.height); all frames must have the same size")
            }
            guard (0...65535).contains(frame.delay) else {
                throw FrameExportError.invalidArgument("GIF frame \(index) has delay \(frame.delay); it must be 0...65535 hundredths of a second")
            }
        }
        if case .repeatCount(let count) = looping, !(1...65535).contains(count) {
            throw FrameExportError.invalidArgument("GIF repeat count must be 1...65535, got \(count)")
        }
    }

    /// The frame reduced to at most 256 colours, as a gd palette image.
    private func paletteImage(_ image: RGBImage) throws -> GDImage {
        let trueColor = try GDImage(copying: image)
        gdImageTrueColorToPaletteSetMethod(trueColor.pointer, Int32(GD_QUANT_JQUANT.rawValue), 0)
        guard let palette = GDImage(gdImageCreatePaletteFromTrueColor(trueColor.pointer, dithering ? 1 : 0, 256)) else {
            throw FrameExportError.encodingFailed(format: "GIF", reason: "libgd could not reduce a frame to 256 colours")
        }
        return palette
    }
}
