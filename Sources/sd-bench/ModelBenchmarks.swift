import ArgumentParser
import Foundation
import StableDiffusion
import TensorCore

/// One measured part: seconds, GFLOP counted from the layer shapes, and the rate.
struct PartResult {
    var name: String
    var seconds: Double
    var gflop: Double
    var gflops: Double { gflop / seconds }
    var profile: [(category: String, seconds: Double, calls: Int)]

    var json: [String: Any] {
        ["seconds": seconds, "gflop": gflop, "gflops": gflops,
         "profile": Dictionary(uniqueKeysWithValues: profile.map { ($0.category, $0.seconds) })]
    }
}

/// Options shared by the model benchmarks.
struct ModelBenchmarkOptions: ParsableArguments {
    @Option(help: "Image size in pixels (latents are size/8).")
    var size = 512

    @Option(help: "Batch: 2 is one guided step (unconditional + prompt).")
    var batch = 2

    @Option(help: "Runs of each model; the fastest counts (the first also pays one-time costs such as faulting in fresh memory).")
    var runs = 2

    @Option(help: "Precision the layer weights are kept in: float32, float16 or bfloat16 (16-bit weights are widened as the GEMM packs them, as with a 16-bit checkpoint).")
    var weights = WeightPrecision.float32

    @Flag(help: "Print a JSON object with the results on the last line.")
    var json = false

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard size >= 64, size % 64 == 0 else { throw ValidationError("--size must be a multiple of 64, at least 64") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        try ModelBenchmark.validateEnvironment()
    }
}

/// The `--weights` choices.
enum WeightPrecision: String, ExpressibleByArgument, CaseIterable {
    case float32, float16, bfloat16

    var halfFormat: HalfTensor.Format? {
        switch self {
        case .float32: return nil
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        }
    }
}

enum ModelBenchmark {
    /// Times `body` `runs` times with the per-operation profiler on and keeps the fastest run.
    static func measure(_ name: String, gflop: Double, runs: Int, _ body: () throws -> Void) rethrows -> PartResult {
        var fastest: PartResult?
        for _ in 0..<runs {
            Profiler.reset()
            Profiler.isEnabled = true
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            Profiler.isEnabled = false
            if seconds < fastest?.seconds ?? .infinity {
                fastest = PartResult(name: name, seconds: seconds, gflop: gflop, profile: Profiler.report)
            }
        }
        return fastest!
    }

    static func unet(size: Int, batch: Int, runs: Int, weights: WeightPrecision) throws -> PartResult {
        let configuration = UNetConfiguration.sd15
        let model = try UNet2DConditionModel(Weights(RandomWeights.store(seed: 1, precision: weights.halfFormat)), configuration: configuration)
        var generator = TorchGenerator(seed: 0)
        let latents = generator.randn([batch, 4, size / 8, size / 8])
        let context = generator.randn([batch, 77, 768])
        let gflop = UNet2DConditionModel.flopCount(configuration: configuration, latentHeight: size / 8,
                                                   latentWidth: size / 8, batch: batch) / 1e9
        return measure("unet", gflop: gflop, runs: runs) {
            _ = model(latents, timestep: 500, encoderHiddenStates: context)
        }
    }

    static func vaeDecode(size: Int, runs: Int, weights: WeightPrecision) throws -> PartResult {
        let model = try AutoencoderKL(Weights(RandomWeights.store(seed: 2, precision: weights.halfFormat)), configuration: .sd15)
        var generator = TorchGenerator(seed: 0)
        let latents = generator.randn([1, 4, size / 8, size / 8])
        let gflop = Double(try AutoencoderKL.flops(configuration: .sd15, height: size, width: size).decode) / 1e9
        return try measure("vae-decode", gflop: gflop, runs: runs) {
            _ = try model.decode(scaledLatents: latents)
        }
    }

    static func taesdDecode(size: Int, runs: Int, weights: WeightPrecision) throws -> PartResult {
        let store = RandomWeights.store(seed: 4, precision: weights.halfFormat)
        let decoder = try TinyDecoder(Weights(store)["decoder"]["layers"], configuration: .sd)
        var generator = TorchGenerator(seed: 0)
        let latents = generator.randn([1, 4, size / 8, size / 8])
        let gflop = Double(decoder.flopCount(latentHeight: size / 8, latentWidth: size / 8)) / 1e9
        return measure("taesd-decode", gflop: gflop, runs: runs) { _ = decoder(latents) }
    }

    static func textEncoder(batch: Int, runs: Int, weights: WeightPrecision) throws -> PartResult {
        let configuration = CLIPTextConfiguration.sd15
        let model = try CLIPTextModel(Weights(RandomWeights.store(seed: 3, precision: weights.halfFormat)), configuration: configuration)
        let tokenizer = try CLIPTokenizer()
        let ids = (0..<batch).map { _ in tokenizer.tokenize("a photograph of an astronaut riding a horse on the moon").ids }
        // Per token and layer: 4 D×D projections, 2 D×4D MLP matrices, and QKᵀ and PV (T×D each).
        let d = Double(configuration.hiddenSize), t = 77.0, layers = Double(configuration.numHiddenLayers)
        let gflop = 2 * Double(batch) * layers * (t * (4 * d * d + 2 * d * Double(configuration.intermediateSize)) + 2 * t * t * d) / 1e9
        return measure("text-encoder", gflop: gflop, runs: runs) { _ = model(ids) }
    }

    /// Prints a part's line and its profile.
    static func report(_ part: PartResult, gemmPeak: Double?) {
        var line = part.name.padding(toLength: 14, withPad: " ", startingAt: 0)
            + String(format: "%8.2f s  %8.1f GFLOP  %6.1f GFLOP/s", part.seconds, part.gflop, part.gflops)
        if let gemmPeak { line += String(format: "  (%.2f of the GEMM's %.0f GFLOP/s)", part.gflops / gemmPeak, gemmPeak) }
        print(line)
        let total = part.seconds
        let counted = part.profile.reduce(0) { $0 + $1.seconds }
        for entry in part.profile + [("other", max(0, total - counted), 0)] where entry.1 / total >= 0.005 {
            print("    " + entry.0.padding(toLength: 34, withPad: " ", startingAt: 0)
                  + String(format: "%5.1f%%  %7.2f s", 100 * entry.1 / total, entry.1))
        }
    }

    /// Our GEMM's rate on a 2048² product: the yardstick for "fraction of the machine's peak".
    static func gemmPeak() -> Double {
        let n = 2048
        let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        let seconds = best(of: 5) {
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                gemm(m: n, n: n, k: n, a: .rowMajor(pa.baseAddress!, rowLength: n),
                     b: .rowMajor(pb.baseAddress!, rowLength: n), c: pc.baseAddress!, ldc: n)
            } } }
        }
        return 2 * Double(n * n * n) / seconds / 1e9
    }

    /// One subcommand's work: the GEMM peak as the yardstick (if asked), the part, its report.
    static func runOne(_ options: ModelBenchmarkOptions, measuringPeak: Bool, _ part: () throws -> PartResult) throws {
        printKernels()
        let peak = measuringPeak ? gemmPeak() : nil
        let result = try part()
        report(result, gemmPeak: peak)
        if options.json { try printJSON([result], extra: peak.map { ["gemm_peak_gflops": $0] } ?? [:]) }
    }

    /// Which kernels the models run on: the fast ones, or with `SD_KERNELS=reference` the plain
    /// loops (the GEMM yardstick is always the fast GEMM).
    static func printKernels() {
        print(Kernels.current == .fast ? "kernels: fast" : "kernels: reference (plain loops; the GEMM yardstick stays fast)")
        print("instruction set: \(InstructionSet.active.summary)")
    }

    /// `SD_KERNELS` and `SD_CPU`, checked before any work: a bad value stops the benchmark with a
    /// message instead of being ignored.
    static func validateEnvironment() throws {
        do {
            _ = try Kernels.fromEnvironment()
            _ = try InstructionSet.fromEnvironment()
        } catch {
            throw ValidationError("\(error)")
        }
    }

    static func printJSON(_ parts: [PartResult], extra: [String: Any]) throws {
        var object = extra
        object["kernels"] = Kernels.current.rawValue
        object["instruction_set"] = InstructionSet.active.rawValue
        for part in parts { object[part.name] = part.json }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

/// `sd-bench unet`: one UNet evaluation with SD 1.5's real shapes and random weights.
struct UNetBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unet",
        abstract: "Time one SD 1.5 UNet call (batch 2 = one guided denoising step).",
        discussion: "Example: sd-bench unet --size 512 --batch 2")
    @OptionGroup var options: ModelBenchmarkOptions

    func run() throws {
        try ModelBenchmark.runOne(options, measuringPeak: true) { try ModelBenchmark.unet(size: options.size, batch: options.batch, runs: options.runs, weights: options.weights) }
    }
}

/// `sd-bench vae-decode`: the VAE decoder from latents to pixels.
struct VAEDecodeBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vae-decode",
        abstract: "Time the SD 1.5 VAE decoder.", discussion: "Example: sd-bench vae-decode --size 512")
    @OptionGroup var options: ModelBenchmarkOptions

    func run() throws {
        try ModelBenchmark.runOne(options, measuringPeak: true) { try ModelBenchmark.vaeDecode(size: options.size, runs: options.runs, weights: options.weights) }
    }
}

/// `sd-bench taesd-decode`: the tiny autoencoder's decoder (TAESD, 64 channels).
struct TAESDDecodeBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "taesd-decode",
        abstract: "Time TAESD's decoder, the tiny stand-in for the VAE's.", discussion: "Example: sd-bench taesd-decode --size 512")
    @OptionGroup var options: ModelBenchmarkOptions

    func run() throws {
        try ModelBenchmark.runOne(options, measuringPeak: true) { try ModelBenchmark.taesdDecode(size: options.size, runs: options.runs, weights: options.weights) }
    }
}

/// `sd-bench text-encoder`: CLIP on a batch of 77-token prompts.
struct TextEncoderBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "text-encoder",
        abstract: "Time the CLIP text encoder on 77-token prompts.", discussion: "Example: sd-bench text-encoder")
    @OptionGroup var options: ModelBenchmarkOptions

    func run() throws {
        try ModelBenchmark.runOne(options, measuringPeak: false) { try ModelBenchmark.textEncoder(batch: options.batch, runs: options.runs, weights: options.weights) }
    }
}

/// `sd-bench all`: every part, then one JSON line with `--json`.
struct AllBenchmarks: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "all",
        abstract: "GEMM peak, text encoder, UNet, VAE decode and TAESD decode in one run.", discussion: "Example: sd-bench all --json")
    @OptionGroup var options: ModelBenchmarkOptions

    func run() throws {
        ModelBenchmark.printKernels()
        let peak = ModelBenchmark.gemmPeak()
        print(String(format: "GEMM 2048x2048x2048: %.1f GFLOP/s", peak))
        let parts = [try ModelBenchmark.textEncoder(batch: options.batch, runs: options.runs, weights: options.weights),
                     try ModelBenchmark.unet(size: options.size, batch: options.batch, runs: options.runs, weights: options.weights),
                     try ModelBenchmark.vaeDecode(size: options.size, runs: options.runs, weights: options.weights),
                     try ModelBenchmark.taesdDecode(size: options.size, runs: options.runs, weights: options.weights)]
        for part in parts { ModelBenchmark.report(part, gemmPeak: part.name == "text-encoder" ? nil : peak) }
        if options.json { try ModelBenchmark.printJSON(parts, extra: ["gemm_peak_gflops": peak]) }
    }
}
