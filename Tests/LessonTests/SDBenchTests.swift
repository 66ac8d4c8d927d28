import Foundation
import TensorCore
import Testing

/// `sd-bench` run as its help text shows, on the smallest part (the text encoder), so that the
/// JSON contract the comparison script relies on is checked. Its numbers are speeds and are not
/// judged here; only that they are there and sensible.
@Suite("sd-bench: the report and its JSON line")
struct SDBenchTests {
    @Test("text-encoder --json: seconds, GFLOP counted from the shapes, the rate and a per-operation profile")
    func textEncoderJSON() throws {
        let run = try LessonRunner.run("sd-bench", ["text-encoder", "--batch", "1", "--runs", "1", "--json"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("text-encoder") && run.output.contains("gemm"))
        let last = try #require(run.output.split(separator: "\n").last)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect(object["kernels"] as? String == "fast")
        // The instruction set the fast kernels chose, in the JSON and on a line of its own.
        #expect(object["instruction_set"] as? String == InstructionSet.best.rawValue)
        #expect(run.output.contains("instruction set: \(InstructionSet.best.summary)"))
        let part = try #require(object["text-encoder"] as? [String: Any])
        let seconds = try #require(part["seconds"] as? Double), gflop = try #require(part["gflop"] as? Double)
        let gflops = try #require(part["gflops"] as? Double)
        // One 77-token prompt through 12 layers of width 768: 2·12·(77·(4·768² + 2·768·3072) + 2·77²·768).
        #expect(abs(gflop - 13.3) < 0.1)
        #expect(seconds > 0 && abs(gflops - gflop / seconds) < 1e-6 * gflops)
        let profile = try #require(part["profile"] as? [String: Double])
        #expect((profile["gemm"] ?? 0) > 0 && (profile["gemm"] ?? .infinity) <= seconds)
    }

    @Test("SD_CPU picks the variant sd-bench runs; one this CPU lacks, or no variant at all, is refused by name")
    func forcedInstructionSet() throws {
        let run = try LessonRunner.run("sd-bench", ["gemm", "--repeats", "1", "--json"], environment: ["SD_CPU": "baseline"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("baseline (4-float vectors"))
        let last = try #require(run.output.split(separator: "\n").last)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect(object["instruction_set"] as? String == "baseline")
        var refused = [("sse9", "SD_CPU: 'sse9' is not an instruction set")]
        for set in InstructionSet.allCases where !set.isSupported {
            refused.append((set.rawValue, "SD_CPU: this CPU cannot run \(set.rawValue) instructions"))
        }
        for (value, message) in refused {
            let bad = try LessonRunner.run("sd-bench", ["text-encoder", "--runs", "1"], environment: ["SD_CPU": value])
            #expect(bad.status != 0 && bad.errors.contains(message), "\(value): \(bad.errors)")
            #expect(!bad.output.contains("text-encoder "), "no work before the message")
        }
    }

    @Test("--weights float16: the same work with 16-bit weights, widened inside the GEMM's packing")
    func halfPrecisionWeights() throws {
        let run = try LessonRunner.run("sd-bench", ["text-encoder", "--batch", "1", "--runs", "1", "--weights", "float16", "--json"])
        #expect(run.status == 0, "\(run.errors)")
        let last = try #require(run.output.split(separator: "\n").last)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        let part = try #require(object["text-encoder"] as? [String: Any])
        #expect(abs((part["gflop"] as? Double ?? 0) - 13.3) < 0.1)
        let profile = try #require(part["profile"] as? [String: Double])
        // No layer widens its weight into a Float32 tensor first; the GEMM does it as it packs.
        #expect(profile["weight widening"] == nil && (profile["gemm"] ?? 0) > 0)
    }

    @Test("train --json: one step's seconds, three forwards' GFLOP, the profile of the backward and the optimiser, the UNet it trained")
    func trainJSON() throws {
        let run = try LessonRunner.run("sd-bench", ["train", "--channels", "32,32,32", "--batch", "2", "--runs", "1", "--json"])
        #expect(run.status == 0, "\(run.errors)")
        let last = try #require(run.output.split(separator: "\n").last)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        let part = try #require(object["train"] as? [String: Any])
        let seconds = try #require(part["seconds"] as? Double), gflop = try #require(part["gflop"] as? Double)
        #expect(seconds > 0 && gflop > 0)
        let profile = try #require(part["profile"] as? [String: Double])
        for kind in ["gemm", "conv2d backward", "optimiser (clipping, AdamW, EMA)"] { #expect((profile[kind] ?? 0) > 0, "\(kind)") }
        let config = try #require(object["unet_config"] as? [String: Any])
        #expect(config["block_out_channels"] as? [Int] == [32, 32, 32])
        #expect(object["batch"] as? Int == 2 && object["size"] as? Int == 64)
        #expect((object["parameters"] as? Int ?? 0) > 100_000 && (object["peak_memory_bytes"] as? Int ?? 0) > 0)
    }

    @Test("bad arguments are named, with a non-zero exit")
    func badArguments() throws {
        for (arguments, message) in [(["unet", "--runs", "0"], "--runs must be at least 1"),
                                     (["unet", "--size", "100"], "--size must be a multiple of 64"),
                                     (["conv", "--repeats", "0"], "--repeats must be at least 1"),
                                     (["unet", "--weights", "float8"], "'float8' is invalid"),
                                     (["train", "--batch", "0"], "--batch must be at least 1, got 0"),
                                     (["train", "--learning-rate", "0"], "the learning rate must be a positive number"),
                                     (["train", "--channels", "64,100,128"], "--channels must be three multiples of 32")] {
            let run = try LessonRunner.run("sd-bench", arguments)
            #expect(run.status != 0)
            #expect(run.errors.contains(message), "\(run.errors)")
        }
        let run = try LessonRunner.run("sd-bench", ["unet"], environment: ["SD_KERNELS": "slow"])
        #expect(run.status != 0)
        #expect(run.errors.contains("SD_KERNELS: 'slow'"), "\(run.errors)")
    }
}
