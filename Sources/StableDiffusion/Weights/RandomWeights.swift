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
