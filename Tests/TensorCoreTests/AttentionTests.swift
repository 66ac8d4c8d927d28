import Testing
import TensorCore

@Suite("Attention")
struct AttentionTests {
    @Test("multi-head attention matches the definition, with and without a causal mask",
          arguments: [(1, 5, 5, 8, 2), (2, 17, 7, 12, 3), (1, 70, 77, 16, 4),
                      // 2100 keys: blocks of 3 panels (48 queries), so 100 queries take three
                      // blocks, the last one partial; the keys take 7 depth slices of 300.
                      (1, 100, 2100, 8, 2), (2, 30, 2100, 6, 1),
                      // d = 350 takes two depth slices (the VAE's attention has d = 512).
                      (1, 20, 33, 700, 2),
                      // One head of one sample (the VAE's case): its queries are shared out
                      // among the cores, 16 + 29 of them here (the mask rows follow), or 0 + 9.
                      (1, 45, 45, 24, 1), (1, 9, 9, 8, 1)])
    func matchesReference(dims: (Int, Int, Int, Int, Int)) {
        let (batch, t, s, width, heads) = dims
        let q = Tensor(shape: [batch, t, width], scalars: randomScalars(batch * t * width, seed: 11))
        let k = Tensor(shape: [batch, s, width], scalars: randomScalars(batch * s * width, seed: 12))
        let v = Tensor(shape: [batch, s, width], scalars: randomScalars(batch * s * width, seed: 13))
        let fast = Fast.scaledDotProductAttention(query: q, key: k, value: v, heads: heads, mask: nil, observer: nil)
        let slow = Reference.scaledDotProductAttention(query: q, key: k, value: v, heads: heads)
        #expect(fast.maxAbsDifference(slow) < 1e-5)
        if t == s {
            let mask = causalMask(t)
            let fastMasked = Fast.scaledDotProductAttention(query: q, key: k, value: v, heads: heads, mask: mask, observer: nil)
            let slowMasked = Reference.scaledDotProductAttention(query: q, key: k, value: v, heads: heads, mask: mask)
            #expect(fastMasked.maxAbsDifference(slowMasked) < 1e-5)
        }
    }

    @Test("a query that matches one key strongly copies that key's value")
    func selectsMatchingKey() {
        // One head, d = 2. Keys point in different directions; the query points at key 1 with a
        // large norm, so softmax puts almost all weight on value 1.
        let q = Tensor(shape: [1, 1, 2], scalars: [0, 40])
        let k = Tensor(shape: [1, 2, 2], scalars: [1, 0, 0, 1])
        let v = Tensor(shape: [1, 2, 2], scalars: [10, 20, 30, 40])
        let out = scaledDotProductAttention(query: q, key: k, value: v, heads: 1)
        #expect(abs(out[0, 0, 0] - 30) < 1e-3 && abs(out[0, 0, 1] - 40) < 1e-3)
    }

    @Test("a query whose every key is masked out gets zeros, and the other queries are unaffected")
    func fullyMaskedQuery() {
        let q = Tensor(shape: [1, 20, 8], scalars: randomScalars(160, seed: 3))
        let k = Tensor(shape: [1, 20, 8], scalars: randomScalars(160, seed: 4))
        var mask = causalMask(20)
        for j in 0..<20 { mask[7, j] = -.infinity }
        let out = scaledDotProductAttention(query: q, key: k, value: k, heads: 2, mask: mask)
        #expect((0..<8).allSatisfy { out[0, 7, $0] == 0 })
        let unmasked = scaledDotProductAttention(query: q, key: k, value: k, heads: 2, mask: causalMask(20))
        for t in 0..<20 where t != 7 {
            #expect((0..<8).allSatisfy { out[0, t, $0] == unmasked[0, t, $0] })
        }
    }

    @Test("the observer sees probability rows that sum to one")
    func observer() {
        let q = Tensor(shape: [1, 6, 4], scalars: randomScalars(24, seed: 1))
        let k = Tensor(shape: [1, 3, 4], scalars: randomScalars(12, seed: 2))
        var rowsSeen = 0
        _ = scaledDotProductAttention(query: q, key: k, value: k, heads: 2) { _, _, rows, p in
            for r in 0..<rows.count {
                let sum = (0..<3).reduce(Float(0)) { $0 + p[r * 3 + $1] }
                #expect(abs(sum - 1) < 1e-5)
            }
            rowsSeen += rows.count
        }
        #expect(rowsSeen == 12)   // 6 queries x 2 heads
    }
}
