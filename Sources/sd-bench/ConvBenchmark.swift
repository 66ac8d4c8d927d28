import ArgumentParser
import Foundation
import TensorCore

/// `sd-bench conv`: GFLOP/s of whole 3x3 convolutions (patches, GEMM, bias) at the sizes where
/// the UNet and the VAE decoder spend their time. A convolution costs `2·C_out·C_in·9·H·W` per image.
struct ConvBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "GFLOP/s of the UNet's and the VAE decoder's 3x3 convolutions.",
        discussion: "Example: sd-bench conv")

    @Option(help: "Repetitions per shape; the best time counts.")
    var repeats = 3

    struct Shape {
        var name: String
        var batch, channels, size: Int
        var flops: Double { 2 * Double(batch * channels * channels * 9 * size * size) }
    }

    static let shapes: [Shape] = [
        Shape(name: "unet 64x64, 320 ch, batch 2", batch: 2, channels: 320, size: 64),
        Shape(name: "unet 32x32, 640 ch, batch 2", batch: 2, channels: 640, size: 32),
        Shape(name: "vae 128x128, 512 ch", batch: 1, channels: 512, size: 128),
        Shape(name: "vae 256x256, 256 ch", batch: 1, channels: 256, size: 256),
        Shape(name: "vae 512x512, 128 ch", batch: 1, channels: 128, size: 512),
    ]

    func run() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        try ModelBenchmark.validateEnvironment()
        print("3x3 convolutions, stride 1, padding 1, on \(Parallel.threadCount) thread(s), \(InstructionSet.active.summary)")
        var generator = SplitMix64(seed: 1)
        for shape in Self.shapes {
            let x = Tensor(shape: [shape.batch, shape.channels, shape.size, shape.size],
                           scalars: generator.floats(shape.batch * shape.channels * shape.size * shape.size))
            let w = Tensor(shape: [shape.channels, shape.channels, 3, 3], scalars: generator.floats(shape.channels * shape.channels * 9))
            let b = Tensor(shape: [shape.channels], scalars: generator.floats(shape.channels))
            let seconds = best(of: repeats) { _ = x.conv2d(weight: w, bias: b, padding: 1) }
            print(shape.name.padding(toLength: 30, withPad: " ", startingAt: 0)
                  + String(format: "%8.3f s %8.1f GFLOP/s", seconds, shape.flops / seconds / 1e9))
        }
    }
}
