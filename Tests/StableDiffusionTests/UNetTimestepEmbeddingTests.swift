import StableDiffusion
import TensorCore
import Testing

@Suite("UNet timestep embedding")
struct UNetTimestepEmbeddingTests {
    @Test("sinusoidal features match diffusers' get_timestep_embedding for t = 0, 1, 250, 500, 981, 999")
    func sinusoidMatchesFixture() throws {
        // unet.time_proj in the fixture: diffusers' Timesteps(16, flip_sin_to_cos=True,
        // downscale_freq_shift=0), i.e. 8 frequencies, [cos | sin].
        let expected = try UNetFixtures.reference("unet.time_proj")       // (6, 16)
        let features = TimestepEmbedding.sinusoid([0, 1, 250, 500, 981, 999], dimension: 16,
                                                  flipSinToCos: true, downscaleFreqShift: 0)
        // Same float32 operations in the same order as PyTorch; only sin/cos/exp may differ in
        // the last bit (angles up to 999 rad, float32 spacing 6e-5 there).
        let error = features.maxAbsDifference(expected)
        print("time_proj (6, 16): max abs error \(error)")
        #expect(error < 1e-5)
        // t = 0: every angle is 0, so cos = 1 and sin = 0 exactly.
        #expect(features.slice(0..<1).scalars == [Float](repeating: 1, count: 8) + [Float](repeating: 0, count: 8))
    }

    @Test("SD 1.5's 320 features at t = 999 match diffusers")
    func sd15Width() {
        // Recorded from diffusers 0.42.1: get_timestep_embedding(torch.tensor([999.0]), 320,
        // flip_sin_to_cos=True, downscale_freq_shift=0)[0, indices], printed with 9 digits.
        let indices = [0, 1, 2, 79, 158, 159, 160, 161, 162, 239, 318, 319]
        let expected: [Float] = [0.999649823, 0.802677512, -0.278062135, -0.401934803, 0.993724525, 0.994406343,
                                 -0.0264607519, 0.596413314, -0.960563123, -0.915668309, 0.11185509, 0.105622061]
        let features = TimestepEmbedding.sinusoid([0, 999], dimension: 320, flipSinToCos: true, downscaleFreqShift: 0)
        let error = zip(indices, expected).map { abs(features[1, $0] - $1) }.max()!
        print("sinusoid(999, 320): max abs error \(error)")
        // PyTorch's vectorised exp is within 1 ulp but not always correctly rounded: 3 of these
        // 160 frequencies are 1 ulp away from the correctly rounded value. A frequency near 1 has
        // a spacing of 6e-8, which t = 999 magnifies to 6e-5 rad in the angle. (A wrong formula,
        // e.g. a frequency shift of 1, moves the angles by tenths of a radian.)
        #expect(error < 1e-4)
        #expect((0..<160).allSatisfy { features[0, $0] == 1 && features[0, 160 + $0] == 0 })
    }

    @Test("the time embedding MLP (linear_1, SiLU, linear_2) matches diffusers")
    func mlpMatchesFixture() throws {
        let store = WeightStore(try UNetFixtures.records())
        let embedding = try TimestepEmbedding(Weights(store)["time_embedding"], channels: 16, timeEmbeddingDim: 64,
                                              flipSinToCos: true, downscaleFreqShift: 0)
        let expected = try UNetFixtures.reference("unet.time_embedding")  // (6, 64)
        for (row, t) in [Float(0), 1, 250, 500, 981, 999].enumerated() {
            let out = embedding(t, batch: 2)                                // (2, 64): the same row twice
            #expect(out.shape == [2, 64])
            // Two small matrix products deep, values of order 1.
            #expect(out.slice(0..<1).maxAbsDifference(expected.slice(row..<(row + 1)).reshaped([1, 64])) < 1e-5)
            #expect(out.slice(0..<1) == out.slice(1..<2))
        }
    }
}
