import Foundation
import FrameExport
import Testing

/// `--kernels` and `SD_KERNELS` on the command line: the plain loops draw the fast kernels' picture,
/// and the report says which kernels ran.
@Suite("sd generate on the plain kernels")
struct KernelsCommandTests {
    static func generate(_ name: String, in folder: URL, _ extra: [String] = [],
                         environment: [String: String] = [:]) throws -> LessonRun {
        try LessonRunner.run("sd", ["generate", "--checkpoint", SDCommandTests.tinyModel, "--prompt", "a red apple",
                                    "--seed", "3", "--steps", "3", "--width", "64", "--height", "64",
                                    "--output", name] + extra, in: folder, environment: environment)
    }

    /// The largest difference between two pictures of one size, in levels of 255.
    static func largestDifference(_ a: RGBImage, _ b: RGBImage) -> Int {
        zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    @Test("--kernels reference and SD_KERNELS=reference give the fast kernels' picture, and say so")
    func samePicture() throws {
        let folder = try LessonRunner.temporaryFolder()
        let fast = try Self.generate("fast.png", in: folder)
        let option = try Self.generate("option.png", in: folder, ["--kernels", "reference"])
        let environment = try Self.generate("environment.png", in: folder, environment: ["SD_KERNELS": "reference"])
        for run in [fast, option, environment] { #expect(run.status == 0, "\(run.errors)") }
        // The report counts the operations that ran on each kind of kernels and names only the
        // kind that ran: all of them on one.
        #expect(fast.output.contains("kernels: fast: "))
        for run in [option, environment] { #expect(run.output.contains("kernels: reference (plain loops): ")) }
        func picture(_ name: String) throws -> RGBImage { try RGBImage(contentsOfFile: folder.appendingPathComponent(name).path) }
        // The two kernel sets differ only in the order of float sums (the library tests hold the
        // tiny model's pixels to 1e-4 of the range); rounding to 8 bits can then move a pixel that
        // sits on a level's edge by one level, no more.
        #expect(Self.largestDifference(try picture("fast.png"), try picture("option.png")) <= 1)
        #expect(try picture("option.png") == picture("environment.png"))
    }

    @Test("a kind of kernels that does not exist: one clear message, non-zero exit, no picture",
          arguments: [(["--kernels", "plain"], [:], "plain"), ([], ["SD_KERNELS": "turbo"], "SD_KERNELS: 'turbo'")])
    func badKernels(arguments: [String], environment: [String: String], message: String) throws {
        let folder = try LessonRunner.temporaryFolder()
        let run = try Self.generate("out.png", in: folder, arguments, environment: environment)
        #expect(run.status != 0)
        #expect(run.errors.contains(message), "stderr: \(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out.png").path))
    }
}
