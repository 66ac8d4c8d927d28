import ArgumentParser
import Foundation
import StableDiffusion
import TensorCore

/// `sd-bench train`: one training step (forward, backward, AdamW) of a small SD-shaped UNet.
///
/// The UNet has Stable Diffusion's structure (cross-attention down blocks, a plain lowest level,
/// a cross-attention middle, skip connections) at a miniature size: three levels of 64, 128 and
/// 256 channels on 8x8 latents (64x64 pixels), as a model trained on a laptop has. Its
/// configuration is printed in the JSON so `Tools/benchmark/compare_pytorch.py` builds the same
/// network in diffusers.
struct TrainBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train",
        abstract: "Time one training step (forward + backward + AdamW) of a small SD-shaped UNet.",
        discussion: "Example: sd-bench train --batch 32 --json")

    /// SD 1.5's UNet with its levels cut to three and their widths to a fifth or less.
    static func unetConfiguration(channels: [Int]) -> UNetConfiguration {
        UNetConfiguration(
            blockOutChannels: channels, layersPerBlock: 1, attentionHeadDim: .all(4), crossAttentionDim: 128,
            downBlockTypes: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            upBlockTypes: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], sampleSize: 8)
    }

    @Option(help: "Channels of the UNet's three levels, finest first.")
    var channels = "64,128,128"

    @Option(help: "Image size in pixels (latents are size/8).")
    var size = 64

    @Option(help: "Samples per training step.")
    var batch = 32

    @Option(help: "Tokens of the text vectors cross-attention reads (77 in SD).")
    var tokens = 77

    @Option(help: "AdamW's learning rate.")
    var learningRate: Float = 1e-4

    @Option(help: "Steps to time; the fastest counts (the first also pays one-time costs).")
    var runs = 3

    @Flag(help: "Print a JSON object with the results on the last line.")
    var json = false

    func validate() throws {
        guard size >= 32, size % 32 == 0 else { throw ValidationError("--size must be a multiple of 32, at least 32") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard tokens >= 1 else { throw ValidationError("--tokens must be at least 1, got \(tokens)") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1, got \(runs)") }
        do { _ = try AdamW(validating: learningRate) } catch { throw ValidationError("--learning-rate: \(error)") }
        try ModelBenchmark.validateEnvironment()
        _ = try channelList()
    }

    /// `--channels` as numbers: three levels, each a multiple of the 32 groups of the GroupNorms.
    func channelList() throws -> [Int] {
        let list = channels.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard list.count == 3, list.allSatisfy({ $0 > 0 && $0 % 32 == 0 }) else {
            throw ValidationError("--channels must be three multiples of 32, such as 64,128,128; got '\(channels)'")
        }
        return list
    }

    func run() throws {
        ModelBenchmark.printKernels()
        let peak = ModelBenchmark.gemmPeak()
        let config = Self.unetConfiguration(channels: try channelList())
        let parameters = try RandomWeights.parameters(seed: 5) { _ = try UNet2DConditionModel($0, configuration: config) }
        var trainer = try UNetTrainer(parameters: parameters, configuration: config,
                                      optimiser: try AdamW(validating: learningRate))
        var generator = TorchGenerator(seed: 0)
        let latent = size / 8
        let latents = generator.randn([batch, 4, latent, latent])
        let context = generator.randn([batch, tokens, config.crossAttentionDim])
        let noise = generator.randn([batch, 4, latent, latent])
        let timesteps = (0..<batch).map { ($0 * 997 + 13) % 1000 }
        // Forward + backward ≈ 3 forwards: the backward of each product is two products of its size.
        let gflop = 3 * UNet2DConditionModel.flopCount(configuration: config, latentHeight: latent, latentWidth: latent,
                                                       batch: batch, contextLength: tokens) / 1e9
        let parameterCount = parameters.values.reduce(0) { $0 + $1.count }
        print(String(format: "UNet: %.2f M parameters, batch %d of %dx%d latents, %d tokens", Double(parameterCount) / 1e6,
                     batch, latent, latent, tokens))
        let result = try ModelBenchmark.measure("train", gflop: gflop, runs: runs) {
            try trainer.step(latents: latents, context: context, timesteps: timesteps, noise: noise)
        }
        ModelBenchmark.report(result, gemmPeak: peak)
        let peakMemory = PeakMemory.residentBytes()
        if let peakMemory { print(String(format: "peak resident memory: %.0f MB", Double(peakMemory) / 1e6)) }
        if json {
            let configJSON = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config))
            var extra: [String: Any] = ["gemm_peak_gflops": peak, "unet_config": configJSON, "batch": batch,
                                        "size": size, "tokens": tokens, "learning_rate": learningRate,
                                        "parameters": parameterCount]
            if let peakMemory { extra["peak_memory_bytes"] = peakMemory }
            try ModelBenchmark.printJSON([result], extra: extra)
        }
    }
}

/// The most memory this process has held at once (`VmHWM` of /proc/self/status, Linux only).
enum PeakMemory {
    static func residentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kilobytes * 1024
    }
}
