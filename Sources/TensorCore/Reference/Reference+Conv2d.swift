// 2-D convolution: the workhorse of the UNet's residual blocks and of the whole VAE.

extension Reference {
    /// PyTorch's `nn.Conv2d` (a cross-correlation, with zero padding), for every output element:
    ///
    ///     out[n, k, oy, ox] = bias[k] + Σ_c Σ_ky Σ_kx  x[n, c, oy·s + ky − p, ox·s + kx − p] · w[k, c, ky, kx]
    ///
    /// where input pixels outside the picture count as zero, `s` is the stride and `p` the padding.
    /// The output is `H_out = ⌊(H + 2p − kH) / s⌋ + 1` rows by `W_out = ⌊(W + 2p − kW) / s⌋ + 1`.
    ///
    /// - Parameters:
    ///   - x: `(N, C, H, W)`.
    ///   - weight: `(K, C, kH, kW)`: `K` filters, each a `C x kH x kW` window of weights.
    ///   - bias: `(K)`, or nil.
    /// - Returns: `(N, K, H_out, W_out)`.
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride s: Int, padding p: Int) -> Tensor {
        let g = Conv2DGeometry(input: x.shape, weight: weight.shape, stride: s, padding: p)
        let (N, C, H, W) = (x.shape[0], g.inChannels, g.inHeight, g.inWidth)
        let (K, kH, kW) = (g.outChannels, g.kernelHeight, g.kernelWidth)
        let (outH, outW) = (g.outHeight, g.outWidth)
        let xs = x.scalars, ws = weight.scalars, bs = bias?.scalars
        var out = [Float](repeating: 0, count: N * K * outH * outW)
        for n in 0..<N {
            for k in 0..<K {
                for oy in 0..<outH {
                    for ox in 0..<outW {
                        var sum: Float = bs?[k] ?? 0
                        for c in 0..<C {
                            for ky in 0..<kH {
                                for kx in 0..<kW {
                                    let iy = oy * s + ky - p, ix = ox * s + kx - p
                                    if iy < 0 || iy >= H || ix < 0 || ix >= W { continue }   // zero padding
                                    sum += xs[((n * C + c) * H + iy) * W + ix] * ws[((k * C + c) * kH + ky) * kW + kx]
                                }
                            }
                        }
                        out[((n * K + k) * outH + oy) * outW + ox] = sum
                    }
                }
            }
        }
        return Tensor(shape: [N, K, outH, outW], scalars: out)
    }
}

/// Geometry of one convolution, shared by the plain and the fast version.
public struct Conv2DGeometry: Equatable {
    public var inChannels, outChannels, kernelHeight, kernelWidth, stride, padding: Int
    public var inHeight, inWidth: Int

    /// `H_out = ⌊(H + 2·padding − kH) / stride⌋ + 1`
    public var outHeight: Int { (inHeight + 2 * padding - kernelHeight) / stride + 1 }
    public var outWidth: Int { (inWidth + 2 * padding - kernelWidth) / stride + 1 }
    /// Weights of a single output channel: `C_in · kH · kW` (the rows of the im2col matrix).
    public var patchSize: Int { inChannels * kernelHeight * kernelWidth }

    package init(input: [Int], weight: [Int], stride: Int, padding: Int) {
        precondition(input.count == 4, "conv2d input must be (N, C, H, W), got \(input)")
        precondition(weight.count == 4, "conv2d weight must be (C_out, C_in, kH, kW), got \(weight)")
        precondition(input[1] == weight[1], "conv2d: input has \(input[1]) channels, weight expects \(weight[1])")
        precondition(stride > 0 && padding >= 0, "conv2d: stride \(stride) and padding \(padding)")
        inChannels = weight[1]; outChannels = weight[0]
        kernelHeight = weight[2]; kernelWidth = weight[3]
        self.stride = stride; self.padding = padding
        inHeight = input[2]; inWidth = input[3]
        precondition(outHeight > 0 && outWidth > 0, "conv2d: kernel larger than padded input \(input)")
    }
}

// MARK: - Backward

extension Reference {
    /// The gradients of `conv2d`. Every product `x[n, c, iy, ix] · w[k, c, ky, kx]` of the forward
    /// (with `iy = oy·s + ky − p`, `ix = ox·s + kx − p` inside the picture) sent its value to
    /// `out[n, k, oy, ox]`, so the gradient of the output flows back to both factors:
    ///
    ///     dx[n, c, iy, ix]  += dOut[n, k, oy, ox] · w[k, c, ky, kx]
    ///     dw[k, c, ky, kx]  += dOut[n, k, oy, ox] · x[n, c, iy, ix]
    ///     db[k]             += dOut[n, k, oy, ox]
    ///
    /// summed over every output position and window offset: the forward's seven loops again.
    public static func conv2dBackward(_ dOut: Tensor, x: Tensor, weight: Tensor, stride s: Int, padding p: Int)
        -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        let g = Conv2DGeometry(input: x.shape, weight: weight.shape, stride: s, padding: p)
        let (N, C, H, W) = (x.shape[0], g.inChannels, g.inHeight, g.inWidth)
        let (K, kH, kW) = (g.outChannels, g.kernelHeight, g.kernelWidth)
        let (outH, outW) = (g.outHeight, g.outWidth)
        let gs = dOut.scalars, xs = x.scalars, ws = weight.scalars
        var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: weight.count)
        var db = [Float](repeating: 0, count: K)
        for n in 0..<N {
            for k in 0..<K {
                for oy in 0..<outH {
                    for ox in 0..<outW {
                        let d = gs[((n * K + k) * outH + oy) * outW + ox]
                        db[k] += d
                        for c in 0..<C {
                            for ky in 0..<kH {
                                for kx in 0..<kW {
                                    let iy = oy * s + ky - p, ix = ox * s + kx - p
                                    if iy < 0 || iy >= H || ix < 0 || ix >= W { continue }   // zero padding
                                    let xi = ((n * C + c) * H + iy) * W + ix, wi = ((k * C + c) * kH + ky) * kW + kx
                                    dx[xi] += d * ws[wi]
                                    dw[wi] += d * xs[xi]
                                }
                            }
                        }
                    }
                }
            }
        }
        return (Tensor(shape: x.shape, scalars: dx), Tensor(shape: weight.shape, scalars: dw), Tensor(shape: [K], scalars: db))
    }
}
