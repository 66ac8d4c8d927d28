/// MT19937, the 32-bit Mersenne Twister (Matsumoto & Nishimura, 1998): PyTorch's CPU random engine.
///
/// The state is 624 words; every 624 outputs the whole state is "twisted" at once, and each output
/// word is then "tempered" with a few shifts and masks.
public struct MersenneTwister: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    /// Seeds like PyTorch's `manual_seed`: the low 32 bits of the seed start the state, then
    /// `state[i] = 1812433253 · (state[i−1] ⊕ (state[i−1] >> 30)) + i`.
    public init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    /// The next 32 random bits.
    public mutating func next() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        for i in 0..<624 {
            // Top bit of this word joined with the low 31 bits of the next one.
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            var next = state[(i + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { next ^= 0x9908_B0DF }
            state[i] = next
        }
        index = 0
    }
}
