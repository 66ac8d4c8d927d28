import Foundation
import FrameExport
import TensorCore
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

    @Test("every instruction set this CPU runs draws the picture of the others, and the report names it")
    func instructionSets() throws {
        let folder = try LessonRunner.temporaryFolder()
        let sets = InstructionSet.allCases.filter(\.isSupported)
        for set in sets {
            let run = try Self.generate("\(set.rawValue).png", in: folder, environment: ["SD_CPU": set.rawValue])
            #expect(run.status == 0, "\(run.errors)")
            #expect(run.output.contains("kernels: fast: ") && run.output.contains("on \(set.summary)"), "\(run.output)")
        }
        func picture(_ set: InstructionSet) throws -> RGBImage {
            try RGBImage(contentsOfFile: folder.appendingPathComponent("\(set.rawValue).png").path)
        }
        // Variants with fused multiply-add compute the same floats; the x86 baseline rounds each
        // product on its own, a float rounding that can move a pixel on a level's edge by one.
        for set in sets.dropFirst() { #expect(Self.largestDifference(try picture(sets[0]), try picture(set)) <= 1) }
    }

    @Test("a kind of kernels that does not exist: one clear message, non-zero exit, no picture",
          arguments: [(["--kernels", "plain"], [:], "plain"), ([], ["SD_KERNELS": "turbo"], "SD_KERNELS: 'turbo'"),
                      ([], ["SD_CPU": "sse9"], "SD_CPU: 'sse9'")])
    func badKernels(arguments: [String], environment: [String: String], message: String) throws {
        let folder = try LessonRunner.temporaryFolder()
        let run = try Self.generate("out.png", in: folder, arguments, environment: environment)
        #expect(run.status != 0)
        #expect(run.errors.contains(message), "stderr: \(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out.png").path))
    }
}

/// The lessons that run the model, on the plain kernels: the fast run's pictures and numbers.
@Suite("Lessons on the plain kernels")
struct KernelsLessonTests {
    /// Runs `lesson` on the tiny model twice, on each kind of kernels, and returns both output folders.
    static func runBoth(_ lesson: String, _ arguments: [String]) throws -> (fast: URL, plain: URL) {
        let folder = try LessonRunner.temporaryFolder()
        var outputs: [URL] = []
        for kernels in ["fast", "reference"] {
            let out = folder.appendingPathComponent(kernels)
            let run = try LessonRunner.run(lesson, ["--no-pause", "--output", out.path, "--checkpoint", SDCommandTests.tinyModel,
                                                    "--kernels", kernels] + arguments)
            #expect(run.status == 0, "\(lesson) --kernels \(kernels): \(run.errors)")
            #expect(run.output.contains("Kernels: reference.") == (kernels == "reference"))
            outputs.append(out)
        }
        return (outputs[0], outputs[1])
    }

    /// Both runs' picture `name` agree to one level of 255 (see `KernelsCommandTests.samePicture`).
    static func expectSamePicture(_ name: String, in runs: (fast: URL, plain: URL)) throws {
        let fast = try RGBImage(contentsOfFile: runs.fast.appendingPathComponent(name).path)
        let plain = try RGBImage(contentsOfFile: runs.plain.appendingPathComponent(name).path)
        #expect(fast.width == plain.width && fast.height == plain.height)
        #expect(KernelsCommandTests.largestDifference(fast, plain) <= 1, "\(name)")
    }

    /// The numbers of a CSV file's last column, row by row.
    static func lastColumn(_ url: URL) throws -> [Double] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").dropFirst()
            .map { Double($0.split(separator: ",").last!)! }
    }

    @Test("backward-denoising: the result and every step's picture")
    func backwardDenoising() throws {
        let runs = try Self.runBoth("backward-denoising", ["--prompt", "a red fox", "--width", "64", "--height", "64",
                                                           "--steps", "3", "--compare-samplers", "none"])
        try Self.expectSamePicture("00-result.png", in: runs)
        try Self.expectSamePicture("02-steps.png", in: runs)
    }

    @Test("vae-latents: the round trip through the VAE and the decoded random latent")
    func vaeLatents() throws {
        let runs = try Self.runBoth("vae-latents", ["--size", "64", "--seed", "7", "--timesteps", "500"])
        try Self.expectSamePicture("04-reconstruction.png", in: runs)
        try Self.expectSamePicture("07-random-latent.png", in: runs)
    }

    @Test("cross-attention: each word's share of the attention, and the picture")
    func crossAttention() throws {
        let runs = try Self.runBoth("cross-attention", ["--width", "64", "--height", "64", "--steps", "2", "--seed", "7",
                                                        "--prompt", "a red apple", "--swap", "apple=pear"])
        let fast = try Self.lastColumn(runs.fast.appendingPathComponent("attention.csv"))
        let plain = try Self.lastColumn(runs.plain.appendingPathComponent("attention.csv"))
        // Shares of attention, printed with 6 decimals: equal up to the last printed digit.
        #expect(fast.count == plain.count && !fast.isEmpty)
        #expect(zip(fast, plain).allSatisfy { abs($0 - $1) <= 2e-6 })
        try Self.expectSamePicture("picture.png", in: runs)
    }
}
