import ArgumentParser
import Foundation
import TensorCore

/// `sd-bench gemm`: GFLOP/s of the fast GEMM and of the naive reference at a few sizes.
///
/// A product of `(M, K)` and `(K, N)` matrices costs `2·M·N·K` floating-point operations (one
/// multiply and one add per term). The reference is timed on a band of rows only, since at 2048²
/// it would take minutes; its rate per row does not depend on how many rows are done.
struct GEMMBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "GFLOP/s of the fast and the reference matrix multiplication.",
        discussion: """
            Example:
              sd-bench gemm            a table, one line per size
              sd-bench gemm --json     the same, plus one JSON object on the last line
            """)

    @Flag(help: "Print a JSON object with the results on the last line.")
    var json = false

    @Option(help: "Repetitions per size; the best time counts.")
    var repeats = 3

    struct Shape {
        var name: String
        var m, n, k: Int
        var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    }

    static let shapes: [Shape] = [
        Shape(name: "square 256", m: 256, n: 256, k: 256),
        Shape(name: "square 512", m: 512, n: 512, k: 512),
        Shape(name: "square 1024", m: 1024, n: 1024, k: 1024),
        Shape(name: "square 2048", m: 2048, n: 2048, k: 2048),
        // The UNet's 3x3 convolution at 64x64 latents: (320, 320·9) · (320·9, 64·64).
        Shape(name: "unet conv3x3 64x64", m: 320, n: 4096, k: 2880),
        // Self-attention scores at 64x64 latents for one head: (4096, 40) · (40, 4096).
        Shape(name: "attention QKᵀ", m: 4096, n: 4096, k: 40),
    ]

    func run() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        try ModelBenchmark.validateEnvironment()
        print("GEMM on \(Parallel.threadCount) thread(s), \(InstructionSet.active.summary); GFLOP/s = 2·M·N·K / seconds / 1e9")
        print("shape".padding(toLength: 22, withPad: " ", startingAt: 0)
              + "   M x N x K            fast GFLOP/s   reference GFLOP/s   ratio")
        var results: [[String: Any]] = []
        for shape in Self.shapes {
            var generator = SplitMix64(seed: UInt64(shape.m * shape.n))
            let a = generator.floats(shape.m * shape.k)
            let b = generator.floats(shape.k * shape.n)
            var c = [Float](repeating: 0, count: shape.m * shape.n)
            let fastSeconds = best(of: repeats) { multiply(a, b, &c, shape, rows: shape.m, fast: true) }
            // Reference on a band of rows sized to take about a quarter of a second.
            let bandRows = max(1, min(shape.m, Int(2.5e8 / (2 * Double(shape.n) * Double(shape.k)))))
            let referenceSeconds = best(of: 1) { multiply(a, b, &c, shape, rows: bandRows, fast: false) }
            let fast = shape.flops / fastSeconds / 1e9
            let reference = shape.flops * Double(bandRows) / Double(shape.m) / referenceSeconds / 1e9
            let dims = "\(shape.m) x \(shape.n) x \(shape.k)".padding(toLength: 21, withPad: " ", startingAt: 0)
            print(shape.name.padding(toLength: 22, withPad: " ", startingAt: 0) + "   " + dims
                  + String(format: "%12.1f %19.2f %8.0fx", fast, reference, fast / reference))
            results.append(["shape": shape.name, "m": shape.m, "n": shape.n, "k": shape.k,
                            "seconds": fastSeconds, "gflop": shape.flops / 1e9, "gflops": fast,
                            "reference_gflops": reference, "fast_over_reference": fast / reference])
        }
        if json {
            let object: [String: Any] = ["gemm": results, "threads": Parallel.threadCount,
                                          "instruction_set": InstructionSet.active.rawValue]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    private func multiply(_ a: [Float], _ b: [Float], _ c: inout [Float], _ s: Shape, rows: Int, fast: Bool) {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    let opA = MatrixOperand.rowMajor(pa.baseAddress!, rowLength: s.k)
                    let opB = MatrixOperand.rowMajor(pb.baseAddress!, rowLength: s.n)
                    if fast {
                        gemm(m: rows, n: s.n, k: s.k, a: opA, b: opB, c: pc.baseAddress!, ldc: s.n)
                    } else {
                        Reference.gemm(m: rows, n: s.n, k: s.k, a: opA, b: opB, c: pc.baseAddress!, ldc: s.n)
                    }
                }
            }
        }
    }
}

/// The shortest wall-clock time of `body` over `count` runs, in seconds.
func best(of count: Int, _ body: () -> Void) -> Double {
    var shortest = Double.infinity
    for _ in 0..<count {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        shortest = min(shortest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return shortest
}
