import StableDiffusion
import TensorCore
import Testing

@Suite("VAE: tiled decoding")
struct VAETilingTests {
    /// Latent pixels `rows` x `columns` of `(N, C, H, W)` latents.
    static func crop(_ x: Tensor, rows: Range<Int>, columns: Range<Int>) -> Tensor {
        var out = Tensor.zeros([x.shape[0], x.shape[1], rows.count, columns.count])
        for n in 0..<x.shape[0] { for c in 0..<x.shape[1] { for (y, row) in rows.enumerated() {
            for (z, column) in columns.enumerated() { out[n, c, y, z] = x[n, c, row, column] }
        } } }
        return out
    }

    @Test("a latent that fits in one tile decodes exactly as without tiling")
    func oneTileIsPlainDecode() throws {
        let vae = try VAEFixture.vae()
        var generator = TorchGenerator(seed: 3)
        let latents = generator.randn([1, 4, 6, 9])
        let plain = try vae.decode(latents)
        #expect(try vae.decodeTiled(latents) == plain)                              // 64 ≥ 9
        #expect(try vae.decodeTiled(latents, tileSize: 9, overlap: 2) == plain)     // exactly one tile
        let scaled = latents.map { $0 * 0.18215 }
        #expect(try vae.decodeTiled(scaledLatents: scaled, tileSize: 9, overlap: 0)
                == vae.decodeTiled(scaled.map { $0 / 0.18215 }, tileSize: 9, overlap: 0))
    }

    @Test("neighbouring tiles are blended with linear weights over the overlap")
    func blendsLinearly() throws {
        // A 14x14 latent, tiles of 8 with an overlap of 2: tiles start at 0 and 6 on each axis,
        // so in image pixels tile 1 starts at 48 and the overlaps are pixels 48..<64, where
        // tile 1's weight rises as (p − 48) / 16 and tile 0's falls as 1 − (p − 48) / 16.
        let vae = try VAEFixture.vae()
        var generator = TorchGenerator(seed: 11)
        let latents = generator.randn([1, 4, 14, 14])
        let tiled = try vae.decodeTiled(latents, tileSize: 8, overlap: 2)
        // The four tiles decoded on their own: t[i][j] covers latent rows 6i..<6i+8, columns 6j..<6j+8.
        let t = try [0, 6].map { r in
            try [0, 6].map { c in try vae.decode(Self.crop(latents, rows: r..<(r + 8), columns: c..<(c + 8))) }
        }
        // (image row, image column, expected) with expected written from the weights by hand.
        let checks: [(Int, Int, Float)] = [
            (10, 20, t[0][0][0, 1, 10, 20]),                                   // tile (0, 0) alone
            (100, 70, t[1][1][0, 1, 52, 22]),                                  // tile (1, 1) alone
            (20, 52, 0.75 * t[0][0][0, 1, 20, 52] + 0.25 * t[0][1][0, 1, 20, 4]),   // 4/16 into a vertical seam
            (61, 30, 0.1875 * t[0][0][0, 1, 61, 30] + 0.8125 * t[1][0][0, 1, 13, 30]), // 13/16 into a horizontal one
            // A corner shared by four tiles: bilinear weights, 8/16 down and 4/16 across.
            (56, 52, 0.5 * 0.75 * t[0][0][0, 1, 56, 52] + 0.5 * 0.25 * t[0][1][0, 1, 56, 4]
                   + 0.5 * 0.75 * t[1][0][0, 1, 8, 52] + 0.5 * 0.25 * t[1][1][0, 1, 8, 4]),
        ]
        for (row, column, expected) in checks {
            // Float32 weighted sums of the same decoded values, in a different order: ~1e-7.
            #expect(abs(tiled[0, 1, row, column] - expected) < 1e-5, "pixel (\(row), \(column))")
        }
    }

    @Test("tiled decoding stays close to the plain decode, closest away from the seams")
    func closeToPlainDecode() throws {
        // A 16x40 latent (a 128x320 image) in tiles of 16 with an overlap of 4: tiles start at
        // columns 0, 12 and 24 (image pixels 0, 96, 192), with seams over pixels 96..<128 and
        // 192..<224. Tiled decoding cannot be exact: each tile normalises with its own GroupNorm
        // statistics, attends only to its own pixels, and sees zero padding at its borders (see
        // AutoencoderKL+Tiling.swift). With the tiny VAE's random weights these effects are much
        // larger than with SD's trained VAE; diffusers' tiled_decode differs by the same amount.
        // Measured: correlation 0.984; mean |Δ| 0.054 overall, 0.041 at 32+ pixels from a seam and
        // 0.092 on the seams, against values of spread 0.46. (A tile placed one latent pixel off
        // drops the correlation to about 0.) The bounds leave a margin of 20-30% on these numbers.
        let vae = try VAEFixture.vae()
        var generator = TorchGenerator(seed: 5)
        let latents = generator.randn([2, 4, 16, 40])
        let plain = try vae.decode(latents)
        let tiled = try vae.decodeTiled(latents, tileSize: 16, overlap: 4)
        let correlation = VAEFixture.correlation(tiled, plain)
        let overall = VAEFixture.meanAbsDifference(tiled, plain)
        let awayColumns = Array(0..<64) + Array(256..<320)        // 32+ pixels from both seams
        let nearColumns = Array(96..<128) + Array(192..<224)      // the seams themselves
        func columns(_ x: Tensor, _ list: [Int]) -> Tensor {
            Tensor(shape: [x.count / x.shape[3] * list.count], scalars: (0..<(x.count / x.shape[3])).flatMap { row in
                list.map { x.scalars[row * x.shape[3] + $0] }
            })
        }
        let away = VAEFixture.meanAbsDifference(columns(tiled, awayColumns), columns(plain, awayColumns))
        let near = VAEFixture.meanAbsDifference(columns(tiled, nearColumns), columns(plain, nearColumns))
        print("VAE tiled vs plain: correlation \(correlation), mean |Δ| \(overall) overall, \(away) away from seams, "
              + "\(near) on seams; plain spread \(plain.standardDeviation)")
        #expect(correlation > 0.95)
        #expect(overall < 0.07)
        #expect(away < 0.05)
        #expect(away < 0.6 * near)
    }

    @Test("impossible tilings are rejected")
    func rejectsBadTiling() throws {
        let vae = try VAEFixture.vae()
        let latents = Tensor.zeros([1, 4, 8, 8])
        for (tile, overlap) in [(0, 0), (8, -1), (8, 5), (1, 1)] {
            #expect(throws: VAEError.invalidTiling("need tileSize ≥ 1 and 0 ≤ overlap ≤ tileSize / 2, "
                                                   + "got tileSize \(tile) and overlap \(overlap)")) {
                try vae.decodeTiled(latents, tileSize: tile, overlap: overlap)
            }
        }
    }
}
