import TensorCore

// Tiled decoding: decode a large latent piece by piece, so that the decoder's biggest activations
// (128 channels at full image resolution: 128 MB per map at 512x512, four times that at 1024x1024)
// only ever exist for one tile.
//
// The latent is cut into overlapping square tiles; each is decoded on its own and the decoded
// tiles are blended where they overlap with weights that ramp linearly from one tile to the next:
//
//     along one axis, in an overlap of E image pixels starting at the next tile's origin o:
//         out(o + y) = (1 − y/E) · previous(o + y) + (y/E) · next(o + y),    0 ≤ y < E
//
// and in two dimensions each tile's weight is the product of its row and column weights
// (bilinear in the corners where four tiles meet). The weights of all tiles sum to 1 at every
// pixel. This is the scheme of diffusers' `AutoencoderKL.tiled_decode` (tiles of 64 latents,
// 25% = 16 latents of overlap), with two differences: diffusers blends the tiles in place one
// after the other, which gives slightly different weights in the corner squares shared by four
// tiles, and it sometimes decodes a last tile that lies wholly inside the one before (see
// `TileAxis`). Everywhere else the two give the same numbers.
//
// Why tiled decoding is not exact, even far from the seams: every GroupNorm in the decoder (about
// 30 of them) normalises with the mean and variance of its whole input feature map. A tile
// computes those statistics over its own pixels only, so a dark tile and a bright tile are
// normalised differently than the full picture would be, and this shifts colours and contrast a
// little everywhere in the tile. The mid-block attention, likewise, lets a pixel look only at
// the pixels of its own tile. Near the tile borders there is a third difference: the 3x3
// convolutions see zero padding where the full map has neighbours. The blending hides the
// resulting seams; it cannot make the tiles equal the plain decode. (Tools that want to come
// closer estimate the GroupNorm statistics once for the whole picture, for instance from a
// downscaled pass, and reuse them in every tile.)

extension AutoencoderKL {
    /// Decodes *unscaled* latents tile by tile, to bound memory on small machines.
    ///
    /// The result is close to `decode(_:)` but not equal (see the discussion at the top of this
    /// file): expect small differences everywhere, largest along the seams.
    /// A latent no larger than one tile is decoded in one piece and equals `decode(_:)` exactly.
    ///
    /// - Parameters:
    ///   - latents: `(N, 4, h, w)`, divided by `scalingFactor` already.
    ///   - tileSize: side of a tile in latent pixels (64, i.e. 512 image pixels, as in diffusers).
    ///   - overlap: latent pixels shared by neighbouring tiles, at most `tileSize / 2`
    ///     (16 = 25%, as in diffusers).
    /// - Returns: `(N, 3, 8h, 8w)`.
    public func decodeTiled(_ latents: Tensor, tileSize: Int = 64, overlap: Int = 16) throws -> Tensor {
        try checkLatents(latents)
        guard tileSize >= 1, overlap >= 0, 2 * overlap <= tileSize else {
            throw VAEError.invalidTiling("need tileSize ≥ 1 and 0 ≤ overlap ≤ tileSize / 2, "
                                         + "got tileSize \(tileSize) and overlap \(overlap)")
        }
        let factor = downsamplingFactor
        let (batch, height, width) = (latents.shape[0], latents.shape[2], latents.shape[3])
        let rows = TileAxis(length: height, tile: tileSize, overlap: overlap, factor: factor)
        let columns = TileAxis(length: width, tile: tileSize, overlap: overlap, factor: factor)
        let channels = configuration.outChannels
        let (outHeight, outWidth) = (height * factor, width * factor)
        var out = Tensor.zeros([batch, channels, outHeight, outWidth])

        for i in rows.origins.indices {
            for j in columns.origins.indices {
                let tileRows = rows.latentRange(i), tileColumns = columns.latentRange(j)
                let tile = latents.window(rows: tileRows, columns: tileColumns)      // (N, 4, ≤64, ≤64)
                let decoded = decoder(postQuantConv(tile))                           // (N, 3, ≤512, ≤512)
                let rowWeights = rows.weights(i), columnWeights = columns.weights(j)
                let (top, left) = (tileRows.lowerBound * factor, tileColumns.lowerBound * factor)
                let (tileHeight, tileWidth) = (rowWeights.count, columnWeights.count)
                // out[n, c, top + y, left + x] += w_row(y) · w_column(x) · decoded[n, c, y, x]
                decoded.withUnsafePointer { source in
                    out.withUnsafeMutablePointer { target in
                        for plane in 0..<(batch * channels) {
                            for y in 0..<tileHeight where rowWeights[y] != 0 {
                                let from = source + (plane * tileHeight + y) * tileWidth
                                let to = target + (plane * outHeight + top + y) * outWidth + left
                                for x in 0..<tileWidth { to[x] += rowWeights[y] * columnWeights[x] * from[x] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `decodeTiled(latents / scalingFactor, ...)`, for latents at the diffusion model's scale.
    public func decodeTiled(scaledLatents: Tensor, tileSize: Int = 64, overlap: Int = 16) throws -> Tensor {
        let scale = scalingFactor
        return try decodeTiled(scaledLatents.map { $0 / scale }, tileSize: tileSize, overlap: overlap)
    }
}

/// Where the tiles lie along one axis, and how much each counts at each of its output pixels.
///
/// Tiles start every `tile − overlap` latents (0, 48, 96, ... for 64 and 16) until one reaches
/// the end of the axis; the last one may be shorter. (diffusers keeps starting tiles until the
/// origin passes the end, so its last tile can lie wholly inside the one before; we skip it.)
/// In image pixels, tile `k` ramps up over the first `E_k` pixels where it overlaps tile `k − 1`,
/// and ramps down where tile `k + 1` ramps up.
struct TileAxis {
    let length, tile, overlap: Int      // in latent pixels
    let factor: Int                     // image pixels per latent pixel (8)
    let origins: [Int]                  // first latent pixel of each tile

    init(length: Int, tile: Int, overlap: Int, factor: Int) {
        (self.length, self.tile, self.overlap, self.factor) = (length, tile, overlap, factor)
        // Tile k − 1 ends at origin_k + overlap: a tile is needed only while that is short of the end.
        origins = Array(stride(from: 0, to: max(1, length - overlap), by: tile - overlap))
    }

    /// Latent rows (or columns) of tile `k`.
    func latentRange(_ k: Int) -> Range<Int> { origins[k]..<min(origins[k] + tile, length) }

    /// Weight of tile `k` at each of its image pixels along this axis.
    ///
    /// Every tile after the first is longer than the overlap (it would not be needed otherwise),
    /// so neighbours always share exactly `E = overlap · 8` image pixels.
    func weights(_ k: Int) -> [Float] {
        let size = latentRange(k).count * factor, extent = overlap * factor
        var weights = [Float](repeating: 1, count: size)
        if k > 0 {
            // Fade in: y / E at the y-th pixel of the overlap with the previous tile.
            for y in 0..<extent { weights[y] = Float(y) / Float(extent) }
        }
        if k + 1 < origins.count {
            // Fade out where the next tile fades in: 1 − y / E. The next tile starts exactly E
            // pixels before this one ends.
            let start = (origins[k + 1] - origins[k]) * factor
            for y in 0..<extent { weights[start + y] = 1 - Float(y) / Float(extent) }
        }
        return weights
    }
}

extension Tensor {
    /// The pixels `rows` x `columns` of every channel: `(N, C, H, W)` → `(N, C, rows, columns)`.
    func window(rows: Range<Int>, columns: Range<Int>) -> Tensor {
        precondition(rank == 4 && rows.upperBound <= shape[2] && columns.upperBound <= shape[3],
                     "window \(rows) x \(columns) outside \(shape)")
        let planes = shape[0] * shape[1], (height, width) = (shape[2], shape[3])
        var values: [Float] = []
        values.reserveCapacity(planes * rows.count * columns.count)
        for plane in 0..<planes {
            for row in rows {
                let start = (plane * height + row) * width
                values += scalars[(start + columns.lowerBound)..<(start + columns.upperBound)]
            }
        }
        return Tensor(shape: [shape[0], shape[1], rows.count, columns.count], scalars: values)
    }
}
