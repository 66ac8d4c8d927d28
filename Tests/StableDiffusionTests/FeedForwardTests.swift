import StableDiffusion
import TensorCore
import Testing

@Suite("FeedForward")
struct FeedForwardTests {
    @Test("the tokens go through in pieces of 2048, with exactly the numbers of all at once")
    func pieces() throws {
        let feedForward = try FeedForward(Weights(RandomWeights.store(seed: 3)), channels: 8)
        // 2 x 1500 tokens = 3000: a piece of 2048 and one of 952.
        let x = Tensor(shape: [2, 1500, 8], scalars: (0..<24_000).map { Float($0 * 7919 % 1000) / 500 - 1 })
        let allAtOnce = feedForward.net2(feedForward.net0Proj(x).geglu())
        let inPieces = feedForward(x)
        #expect(inPieces.shape == [2, 1500, 8])
        // Every token's sums are the same additions in the same order, so not even rounding differs.
        #expect(inPieces.maxAbsDifference(allAtOnce) == 0)
        #expect(inPieces.scalars.contains { $0 != 0 })
    }
}
