import ArgumentParser
import Foundation
import StableDiffusion
import TensorCore

/// `sd-bench train-vae`: one training step (encode, sample, decode, L1 + KL, backward, AdamW) of
/// the shapes model's VAE on 64x64 pictures of the shapes world: the first stage of `sd train`.
struct TrainVAEBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train-vae",
        abstract: "Time one training step of the shapes model's VAE on 64x64 pictures.",
        discussion: "Example: sd-bench train-vae --batch 16")

    @Option(help: "Pictures per training step.")
    var batch = 16

    @Option(help: "Steps to time; the fastest counts (the first also pays one-time costs).")
    var runs = 3

    @Flag(help: "Print a JSON object with the results on the last line.")
    var json = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1, got \(runs)") }
        try ModelBenchmark.validateEnvironment()
    }

    func run() throws {
        ModelBenchmark.printKernels()
        let peak = ModelBenchmark.gemmPeak()
        let configuration = TinyShapesModel.vae, size = TinyShapesModel.pictureSize
        let parameters = try RandomWeights.parameters(seed: 5) { _ = try AutoencoderKL($0, configuration: configuration) }
        var trainer = try VAETrainer(parameters: parameters, configuration: configuration, optimiser: AdamW(validating: 1e-3))
        let pictures = ShapesDataset(seed: 0, size: size).batch(0..<batch).pixels
        var generator = TorchGenerator(seed: 0)
        let flops = try AutoencoderKL.flops(configuration: configuration, height: size, width: size)
        let gflop = 3 * Double(batch) * Double(flops.encode + flops.decode) / 1e9
        print(String(format: "VAE: %.2f M parameters, batch %d of %dx%d pictures",
                     Double(parameters.values.reduce(0) { $0 + $1.count }) / 1e6, batch, size, size))
        let result = try ModelBenchmark.measure("train-vae", gflop: gflop, runs: runs) {
            try trainer.step(images: pictures, generator: &generator)
        }
        ModelBenchmark.report(result, gemmPeak: peak)
        if json { try ModelBenchmark.printJSON([result], extra: ["gemm_peak_gflops": peak, "batch": batch]) }
    }
}
