import Foundation
import TensorCore

/// Weights with the right shapes and sensible sizes but no training, for benchmarks and shape
/// walks that need the real architecture without a 2-4 GB download.
public enum RandomWeights {
    /// A store that makes up every tensor a network asks for: matrices and kernels uniform in
    /// ±√(3 / fan_in) (variance 1/fan_in, so activations keep their size through the layers),
    /// vectors (biases, norm shifts) 0 and norm scales 1. Deterministic for a given seed and key.
    /// With `precision`, layer weights are kept in 16 bits, as from a float16 or bfloat16 file.
    public static func store(seed: UInt64 = 0, precision: HalfTensor.Format? = nil) -> WeightStore {
        WeightStore(fabricating: { key, shape in
            let count = shape.reduce(1, *)
            if shape.count == 1 {
                let isScale = key.hasSuffix("weight")       // GroupNorm / LayerNorm γ
                return Tensor(repeating: isScale ? 1 : 0, shape: shape)
            }
            let fanIn = shape.dropFirst().reduce(1, *)
            let bound = Float((3.0 / Double(max(1, fanIn))).squareRoot())
            // FNV-1a of the key (Swift's own hashValue changes from run to run).
            var state = key.utf8.reduce(seed ^ 0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 } | 1
            return Tensor(shape: shape) { out in
                for i in 0..<count {
                    // xorshift64*: fast, and good enough to make numbers that are not all alike.
                    state ^= state >> 12; state ^= state << 25; state ^= state >> 27
                    let bits = (state &* 2_685_821_657_736_338_717) >> 40     // 24 random bits
                    out[i] = (Float(bits) / Float(1 << 24) * 2 - 1) * bound
                }
            }
        }, precision: precision)
    }
}

extension RandomWeights {
    /// Every weight a network asks for while `build` builds it, made up as `store(seed:)` makes
    /// them, by checkpoint key, in Float32: the starting weights of a network trained from scratch.
    ///
    /// ```swift
    /// let start = try RandomWeights.parameters(seed: 7) { try UNet2DConditionModel($0, configuration: config) }
    /// var trainer = try UNetTrainer(parameters: start, configuration: config, optimiser: AdamW(learningRate: 1e-4))
    /// ```
    public static func parameters(seed: UInt64 = 0, _ build: (Weights) throws -> Void) rethrows -> [String: Tensor] {
        let made = MadeTensors()
        let random = store(seed: seed)
        try build(Weights(WeightStore(fabricating: { key, shape in
            let tensor = try! random.tensor(key, shape: shape)   // a fabricating store never throws
            made.add(key, tensor)
            return tensor
        })))
        return made.tensors
    }

    /// The tensors a fabricating store handed out (modules may be built on several threads).
    private final class MadeTensors: @unchecked Sendable {
        private let lock = NSLock()
        private var made: [String: Tensor] = [:]
        var tensors: [String: Tensor] { lock.withLock { made } }
        func add(_ key: String, _ tensor: Tensor) { lock.withLock { made[key] = tensor } }
    }
}
