import ArgumentParser
import Foundation
import TensorCore

/// Measures how fast the tensor core runs Stable Diffusion's heavy operations.
///
/// Always build it in release mode; a debug build is 10-100x slower and measures nothing useful.
///
/// ```
/// swift run -c release sd-bench gemm
/// swift run -c release sd-bench gemm --json
/// ```
@main
struct SDBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sd-bench",
        abstract: "Benchmarks of the plain-Swift tensor core.",
        subcommands: [GEMMBenchmark.self, ConvBenchmark.self, UNetBenchmark.self, VAEDecodeBenchmark.self, TAESDDecodeBenchmark.self, TextEncoderBenchmark.self, TrainVAEBenchmark.self,
                      AllBenchmarks.self, TrainBenchmark.self])
}
