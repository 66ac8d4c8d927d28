import StableDiffusion
import TensorCore

/// Collects, during one generation, where in the picture each prompt token is looked at.
///
/// The UNet's observer hands over the cross-attention probabilities of one layer, one head and
/// one block of pixels at a time: `p[row, token]`, how much pixel `row` attends to `token`. For
/// every layer we add up, per token, `p[row, token]` over the heads. When a step ends, each
/// layer's map is divided by its head count, stretched to the latent size (layers work at 64, 32,
/// 16 and 8 pixels across for a 512x512 picture), and the layers are averaged. That gives one
/// `(h, w)` map per token per step.
public final class AttentionMaps {
    /// One denoising step's maps.
    public struct Step {
        /// The step's position in the run, from 0.
        public let index: Int
        /// The timestep it denoised.
        public let timestep: Float
        /// `maps[k]` is the `(h, w)` map, row-major, of content token `k + 1` (position in the 77).
        public let maps: [[Float]]
        /// Mean probability (over pixels, heads and layers) of the start token. With the two
        /// shares below it adds up to 1.
        public let startShare: Float
        /// The mean probability of each content token.
        public let tokenShares: [Float]
        /// The mean probability of the end token with all the padding after it.
        public let endShare: Float
    }

    /// One layer's running sums for the step in progress.
    private struct LayerSum {
        var maps: [[Float]]      // (tokens, rows): Σ over heads of p[row, token]
        var start: Double = 0    // Σ over heads and rows of p[row, 0]
        var end: Double = 0      // Σ over heads and rows of p[row, end...76]
        var rows = 0             // pixels in this layer (largest row index seen + 1)
        var heads = 0            // heads seen (largest head index + 1)
    }

    /// The latent's size: every map is `(latentHeight, latentWidth)`.
    public let latentHeight: Int, latentWidth: Int
    /// Number of content tokens (positions 1...tokenCount).
    public let tokenCount: Int
    /// Which half of the guidance batch holds the prompt: 1 when guidance is on (0 is the
    /// negative prompt), else 0.
    public let batch: Int
    private var layers: [String: LayerSum] = [:]
    private var order: [String] = []    // layer names in the order the UNet runs them
    /// The finished steps, in order.
    public private(set) var steps: [Step] = []
    /// Names and sizes of the cross-attention layers seen, in the order of the first UNet call.
    public private(set) var layerSizes: [(name: String, height: Int, width: Int, heads: Int)] = []

    /// An empty collector for a `latentHeight` x `latentWidth` latent and `tokenCount` content
    /// tokens; `batch` is the half of the guidance batch to listen to.
    public init(latentHeight: Int, latentWidth: Int, tokenCount: Int, batch: Int) {
        self.latentHeight = latentHeight
        self.latentWidth = latentWidth
        self.tokenCount = tokenCount
        self.batch = batch
    }

    /// The `CrossAttentionObserver` to pass to `generate`.
    public func observe(layer: String, batch: Int, head: Int, rows: Range<Int>, probabilities p: UnsafeBufferPointer<Float>) {
        guard batch == self.batch else { return }
        let tokens = p.count / max(1, rows.count)                          // S = 77
        let end = tokenCount + 1
        // Taken out of the dictionary while it grows, so the arrays are not copied on every call.
        var sum = layers.removeValue(forKey: layer) ?? {
            order.append(layer)
            return LayerSum(maps: [[Float]](repeating: [], count: tokenCount))
        }()
        let known = sum.maps.first?.count ?? 0
        if known < rows.upperBound {
            // The layer's size is not announced: the pixel dimension grows as row blocks arrive.
            for k in 0..<tokenCount { sum.maps[k] += [Float](repeating: 0, count: rows.upperBound - known) }
        }
        for r in 0..<rows.count {
            let base = r * tokens
            let pixel = rows.lowerBound + r
            sum.start += Double(p[base])
            for k in 0..<tokenCount { sum.maps[k][pixel] += p[base + 1 + k] }
            for j in end..<tokens { sum.end += Double(p[base + j]) }
        }
        sum.rows = max(sum.rows, rows.upperBound)
        sum.heads = max(sum.heads, head + 1)
        layers[layer] = sum
    }

    /// Closes the step: turns the layers' sums into one map per token and starts afresh.
    public func finishStep(index: Int, timestep: Float) {
        let h = latentHeight, w = latentWidth
        var maps = [[Float]](repeating: [Float](repeating: 0, count: h * w), count: tokenCount)
        var shares = [Double](repeating: 0, count: tokenCount)
        var start = 0.0, end = 0.0
        let names = order.filter { layers[$0] != nil }
        for name in names {
            let sum = layers[name]!
            let (lh, lw) = Self.layerSize(pixels: sum.rows, latentHeight: h, latentWidth: w)
            if steps.isEmpty { layerSizes.append((name, lh, lw, sum.heads)) }
            let perPixel = 1 / Double(sum.rows * sum.heads)
            start += sum.start * perPixel
            end += sum.end * perPixel
            for k in 0..<tokenCount {
                // Average over heads, then stretch the layer's (lh, lw) map to (h, w).
                let layerMap = sum.maps[k].map { $0 / Float(sum.heads) }
                shares[k] += Double(layerMap.reduce(0, +)) / Double(sum.rows)
                let stretched = Self.resizeBilinear(layerMap, height: lh, width: lw, toHeight: h, toWidth: w)
                for i in 0..<(h * w) { maps[k][i] += stretched[i] }
            }
        }
        let layerCount = Float(max(1, names.count))
        maps = maps.map { $0.map { $0 / layerCount } }
        steps.append(Step(index: index, timestep: timestep, maps: maps,
                          startShare: Float(start) / layerCount,
                          tokenShares: shares.map { Float($0) / layerCount },
                          endShare: Float(end) / layerCount))
        layers = [:]
    }

    /// The map of content positions `positions` (1-based; a word split into several tokens passes
    /// them all), summed, averaged over all steps (or the given ones), scaled to [0, 1].
    public func normalisedMap(positions: [Int], steps chosen: [Step]? = nil) -> [Float] {
        let chosen = chosen ?? steps
        var map = [Float](repeating: 0, count: latentHeight * latentWidth)
        for step in chosen {
            for position in positions where (1...tokenCount).contains(position) {
                for i in map.indices { map[i] += step.maps[position - 1][i] }
            }
        }
        return Self.scaledToUnit(map)
    }

    /// The `(h, w)` map of one content position averaged over the steps, unscaled: at each latent
    /// pixel, the probability with which it attends to that token, averaged over heads, layers
    /// and steps (what `normalisedMap` stretches to 0...1 for display).
    public func meanMap(position: Int) -> Tensor {
        var map = [Float](repeating: 0, count: latentHeight * latentWidth)
        if (1...tokenCount).contains(position) {
            for step in steps {
                for i in map.indices { map[i] += step.maps[position - 1][i] / Float(steps.count) }
            }
        }
        return Tensor(shape: [latentHeight, latentWidth], scalars: map)
    }

    /// Mean share of attention of content positions, averaged over steps.
    public func share(positions: [Int]) -> Float {
        guard !steps.isEmpty else { return 0 }
        let total = steps.reduce(Float(0)) { sum, step in
            sum + positions.filter { (1...tokenCount).contains($0) }.reduce(Float(0)) { $0 + step.tokenShares[$1 - 1] }
        }
        return total / Float(steps.count)
    }

    /// Min-max scaling to [0, 1]; a flat map becomes all zeros.
    public static func scaledToUnit(_ values: [Float]) -> [Float] {
        guard let low = values.min(), let high = values.max(), high > low else {
            return [Float](repeating: 0, count: values.count)
        }
        return values.map { ($0 - low) / (high - low) }
    }

    /// The size of a layer that works on `pixels` positions: the latent halved 0, 1, 2... times,
    /// rounding up as the UNet's downsamplers do.
    public static func layerSize(pixels: Int, latentHeight: Int, latentWidth: Int) -> (Int, Int) {
        var h = latentHeight, w = latentWidth
        while h * w > pixels && h > 1 {
            h = (h + 1) / 2
            w = (w + 1) / 2
        }
        precondition(h * w == pixels, "a cross-attention layer with \(pixels) pixels does not fit a \(latentHeight)x\(latentWidth) latent")
        return (h, w)
    }

    /// Bilinear resize of a row-major `(height, width)` map, sampling at pixel centres (as
    /// PyTorch's `interpolate(mode="bilinear", align_corners=False)` does).
    public static func resizeBilinear(_ values: [Float], height: Int, width: Int, toHeight: Int, toWidth: Int) -> [Float] {
        if height == toHeight && width == toWidth { return values }
        var out = [Float](repeating: 0, count: toHeight * toWidth)
        func source(_ i: Int, _ from: Int, _ to: Int) -> (Int, Int, Float) {
            let x = max(0, (Float(i) + 0.5) * Float(from) / Float(to) - 0.5)
            let low = min(Int(x), from - 1)
            return (low, min(low + 1, from - 1), x - Float(low))
        }
        for y in 0..<toHeight {
            let (y0, y1, fy) = source(y, height, toHeight)
            for x in 0..<toWidth {
                let (x0, x1, fx) = source(x, width, toWidth)
                let top = values[y0 * width + x0] * (1 - fx) + values[y0 * width + x1] * fx
                let bottom = values[y1 * width + x0] * (1 - fx) + values[y1 * width + x1] * fx
                out[y * toWidth + x] = top * (1 - fy) + bottom * fy
            }
        }
        return out
    }
}
