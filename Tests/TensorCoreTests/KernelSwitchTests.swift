import Testing
import TensorCore

@Suite("The kernel switch: one setting sends every operation to the plain loops or the fast kernels")
struct KernelSwitchTests {
    /// One of every kind of operation a network calls, in a row: each result is one operation.
    static func everyOperation() -> [Tensor] {
        let image = randomTensor([1, 4, 6, 6], seed: 1)
        let tokens = randomTensor([1, 5, 8], seed: 2)
        let kernel = randomTensor([4, 4, 3, 3], seed: 3)
        let weight = randomTensor([8, 8], seed: 4), bias = randomTensor([8], seed: 5)
        let gamma = randomTensor([4], seed: 6)
        var residual = tokens
        residual += tokens
        return [
            image.conv2d(weight: kernel, bias: nil, padding: 1),
            tokens.linear(weight: weight, bias: bias),
            tokens.matmul(weight),
            image.groupNorm(groups: 2, weight: gamma, bias: gamma, eps: 1e-5, silu: true),
            tokens.layerNorm(weight: bias, bias: bias),
            tokens.softmax(),
            scaledDotProductAttention(query: tokens, key: tokens, value: tokens, heads: 2, mask: causalMask(5)),
            tokens.silu(), tokens.gelu(), tokens.quickGELU(), tokens.geglu(),
            image.upsampledNearest2x(),
            embeddingLookup([[1, 0, 7]], table: weight),
            tokens + tokens, tokens - tokens, tokens * tokens, tokens * 2, tokens + 1,
            tokens.scaled(2, plus: tokens, times: 3), residual,
            image.addingChannelwise(gamma), tokens.map { $0 * 3 }, tokens.zipMap(tokens) { $0 - $1 },
        ]
    }

    @Test("under .reference every operation runs on the plain loops, and none on the fast kernels")
    func referenceRunsEverywhere() {
        let (results, tally) = Kernels.counting { Kernels.using(.reference) { Self.everyOperation() } }
        #expect(tally.calls(.fast) == 0)
        #expect(tally.calls(.reference) == results.count)
        for name in ["conv2d", "linear", "matmul", "group norm", "layer norm", "softmax", "attention", "silu",
                     "gelu", "quick gelu", "geglu", "upsample", "embedding", "add", "subtract", "multiply",
                     "scale", "add scalar", "weighted sum", "add per channel", "map", "zip"] {
            #expect(tally.operations[name] != nil, "\(name) was not counted")
        }
        #expect(tally.summary == "reference (plain loops): \(results.count) operations")
    }

    @Test("under .fast the same operations run on the fast kernels, with the same results up to rounding")
    func fastRunsEverywhere() {
        let (fast, fastTally) = Kernels.counting { Kernels.using(.fast) { Self.everyOperation() } }
        let plain = Kernels.using(.reference) { Self.everyOperation() }
        #expect(fastTally.calls(.reference) == 0 && fastTally.calls(.fast) == fast.count)
        #expect(fastTally.summary == "fast: \(fast.count) operations")
        for (f, p) in zip(fast, plain) {
            #expect(f.shape == p.shape)
            #expect(f.maxAbsDifference(p) < 1e-4)
        }
    }

    @Test("the plain path really computes: a plain conv2d under the switch is Reference.conv2d, bit for bit")
    func switchReachesTheLoops() {
        let x = randomTensor([1, 16, 9, 9], seed: 7), w = randomTensor([8, 16, 3, 3], seed: 8)
        let switched = Kernels.using(.reference) { x.conv2d(weight: w, bias: nil, padding: 1) }
        #expect(switched == Reference.conv2d(x, weight: w, bias: nil, stride: 1, padding: 1))
        // The fast kernel adds its 144-term sums in another order, so it differs in the last bits:
        // had the switch done nothing, the two results above would not be identical.
        #expect(x.conv2d(weight: w, bias: nil, padding: 1).maxAbsDifference(switched) > 0)
    }

    @Test("the innermost choice wins, and the outer one comes back after it")
    func nesting() {
        Kernels.using(.reference) {
            #expect(Kernels.current == .reference)
            Kernels.using(.fast) { #expect(Kernels.current == .fast) }
            #expect(Kernels.current == .reference)
        }
    }

    @Test("a piece of work that ran on both says how many operations ran on each")
    func mixed() {
        let x = randomTensor([3, 5], seed: 9)
        let (_, tally) = Kernels.counting {
            _ = Kernels.using(.fast) { x.silu() }
            _ = Kernels.using(.reference) { (x.silu(), x.softmax()) }
        }
        #expect(tally.summary == "mixed: 2 operations on the plain loops, 1 on the fast kernels")
        #expect(tally.operations == ["silu": 2, "softmax": 1])
    }

    @Test("SD_KERNELS: fast, reference (any case), unset or empty, and a wrong value named in the error")
    func environment() throws {
        #expect(try Kernels.fromEnvironment(["SD_KERNELS": "reference"]) == .reference)
        #expect(try Kernels.fromEnvironment(["SD_KERNELS": "Fast"]) == .fast)
        #expect(try Kernels.fromEnvironment([:]) == nil)
        #expect(try Kernels.fromEnvironment(["SD_KERNELS": ""]) == nil)
        do {
            _ = try Kernels.fromEnvironment(["SD_KERNELS": "plain"])
            Issue.record("'plain' was accepted")
        } catch {
            #expect("\(error)".contains("'plain'") && "\(error)".contains("fast or reference"))
        }
    }
}
