import Foundation
import TensorCore
import Testing
import FrameExport

/// Damaged files must be refused with an error or decoded as best the codec can, and never crash
/// the process. Each test flips bytes of a valid file at many positions, reproducibly.
struct DamagedInputTests {
    /// Decodes `count` damaged copies of `original`; returns how many were refused with an error.
    /// With `intact` given, every copy that does decode must still give exactly those pixels.
    private func decodeDamagedCopies(of original: [UInt8], count: Int, seed: UInt64, intact: RGBImage? = nil) -> Int {
        var random = SplitMix64(seed: seed)
        var refused = 0
        for _ in 0..<count {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                bytes[Int.random(in: 2..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            do {
                let image = try RGBImage(decoding: Data(bytes), name: "damaged")
                #expect(image.pixels.count == image.width * image.height * 3)
                if let intact { #expect(image == intact, "damage changed pixels without an error") }
            } catch is FrameExportError {
                refused += 1
            } catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
        return refused
    }

    @Test func damagedPNGsAreRefusedOrHarmless() throws {
        // Critical chunks (IHDR, IDAT) carry CRCs, so damage there must be refused. libpng only
        // warns about damaged ancillary chunks (here the sRGB chunk libpng writes) and does not
        // read IEND at all; damage there must leave the pixels exactly as they were.
        let original = testPattern(width: 24, height: 16)
        let png = [UInt8](try original.pngData())
        let refused = decodeDamagedCopies(of: png, count: 300, seed: 1, intact: original)
        #expect(refused > 250, "only \(refused) of 300 damaged PNGs were refused")
    }

    @Test func damagedJPEGsNeverCrash() throws {
        let jpeg = [UInt8](try smoothPicture(width: 24, height: 16).jpegData())
        // JPEG has no checksums; libjpeg decodes much damage into wrong pixels. Only survival counts.
        _ = decodeDamagedCopies(of: jpeg, count: 300, seed: 2)
    }
}
