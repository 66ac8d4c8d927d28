// Every operation the three networks of Stable Diffusion call, in one list.
//
// Each one checks its shapes, then runs on the kernels `Kernels.current` names: the plain loops
// in `Reference/` (read those to see what an operation computes) or their fast twins in `Fast/`
// (read those to see how a CPU is kept busy). Both give the same numbers up to the order in which
// floats are added, and the tests hold every fast kernel to its plain twin.
//
// Operations that only move numbers (reshape, permute, concatenate, slice; Tensor+Shape.swift)
// are plain loops already and have a single version.

// MARK: - Matrix products (Reference+Matmul.swift)

extension Tensor {
    /// Matrix product of the last two dimensions, batched over the leading ones:
    /// `(..., M, K) · (K, N)` → `(..., M, N)`. The right operand is one matrix shared by the batch.
    ///
    /// ```swift
    /// let a = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
    /// print(a.matmul(a).scalars)     // [7, 10, 15, 22]
    /// ```
    public func matmul(_ other: Tensor) -> Tensor {
        precondition(rank >= 2 && other.rank == 2 && shape[rank - 1] == other.shape[0],
                     "matmul shapes do not fit: \(shape) · \(other.shape)")
        return Kernels.run("matmul", reference: { Reference.matmul(self, other) }, fast: { Fast.matmul(self, other) })
    }

    /// A fully connected layer, `y = x · Wᵀ + b`, with PyTorch's weight layout.
    ///
    /// - Parameters:
    ///   - weight: `(D_out, D_in)`.
    ///   - bias: `(D_out)`, or nil.
    /// - Returns: `(..., D_out)` for input `(..., D_in)`.
    public func linear(weight: Tensor, bias: Tensor?) -> Tensor {
        checkLinear(weightShape: weight.shape, bias: bias)
        return Kernels.run("linear", reference: { Reference.linear(self, weight: weight, bias: bias) },
                           fast: { Fast.linear(self, weight: weight, bias: bias) })
    }

    /// The same layer with a 16-bit weight `(D_out, D_in)`. The fast GEMM widens it as it packs
    /// it; the plain loops widen it first.
    public func linear(weight: HalfTensor, bias: Tensor?) -> Tensor {
        checkLinear(weightShape: weight.shape, bias: bias)
        return Kernels.run("linear", reference: { Reference.linear(self, weight: weight.widened(), bias: bias) },
                           fast: { Fast.linear(self, weight: weight, bias: bias) })
    }

    private func checkLinear(weightShape: [Int], bias: Tensor?) {
        precondition(weightShape.count == 2 && weightShape[1] == shape[rank - 1],
                     "linear: input \(shape) does not fit weight \(weightShape)")
        if let bias { precondition(bias.count == weightShape[0], "linear: bias \(bias.shape) for \(weightShape[0]) outputs") }
    }
}

// MARK: - Convolution (Reference+Conv2d.swift)

extension Tensor {
    /// Convolution with PyTorch's `nn.Conv2d` semantics (cross-correlation, zero padding).
    ///
    /// - Parameters:
    ///   - weight: `(C_out, C_in, kH, kW)`.
    ///   - bias: `(C_out)`, or nil.
    /// - Returns: `(N, C_out, H_out, W_out)` for input `(N, C_in, H, W)`, with
    ///   `H_out = ⌊(H + 2·padding − kH) / stride⌋ + 1`.
    public func conv2d(weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
        checkConv2d(weightShape: weight.shape, bias: bias, stride: stride, padding: padding)
        return Kernels.run("conv2d", reference: { Reference.conv2d(self, weight: weight, bias: bias, stride: stride, padding: padding) },
                           fast: { Fast.conv2d(self, weight: weight, bias: bias, stride: stride, padding: padding) })
    }

    /// The same convolution with a 16-bit kernel `(C_out, C_in, kH, kW)`.
    public func conv2d(weight: HalfTensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
        checkConv2d(weightShape: weight.shape, bias: bias, stride: stride, padding: padding)
        return Kernels.run("conv2d", reference: {
            Reference.conv2d(self, weight: weight.widened(), bias: bias, stride: stride, padding: padding)
        }, fast: { Fast.conv2d(self, weight: weight, bias: bias, stride: stride, padding: padding) })
    }

    private func checkConv2d(weightShape: [Int], bias: Tensor?, stride: Int, padding: Int) {
        let g = Conv2DGeometry(input: shape, weight: weightShape, stride: stride, padding: padding)
        if let bias { precondition(bias.count == g.outChannels, "conv2d: bias \(bias.shape) for \(g.outChannels) channels") }
    }
}

// MARK: - Normalisation (Reference+GroupNorm.swift, Reference+LayerNorm.swift)

extension Tensor {
    /// GroupNorm on `(N, C, ...)`: channels split into `groups`, each (sample, group) normalised
    /// over its channels and pixels, then scaled by γ and shifted by β per channel.
    ///
    /// - Parameters:
    ///   - weight: γ, `(C)`; bias: β, `(C)`; nil for 1 and 0.
    ///   - eps: 1e-5 in the UNet, 1e-6 in the VAE.
    ///   - silu: also apply SiLU to the result (the ResNet blocks always do).
    public func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float, silu: Bool = false) -> Tensor {
        precondition(rank >= 2 && groups > 0 && shape[1] % groups == 0,
                     "groupNorm: \(shape) does not split into \(groups) groups of channels")
        checkPerFeature([weight, bias], features: shape[1], "groupNorm")
        return Kernels.run("group norm", reference: {
            Reference.groupNorm(self, groups: groups, weight: weight, bias: bias, eps: eps, silu: silu)
        }, fast: { Fast.groupNorm(self, groups: groups, weight: weight, bias: bias, eps: eps, silu: silu) })
    }

    /// LayerNorm over the last dimension of `(..., D)`: every token normalised on its own.
    /// `weight` γ and `bias` β are `(D)`.
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        checkPerFeature([weight, bias], features: shape[rank - 1], "layerNorm")
        return Kernels.run("layer norm", reference: { Reference.layerNorm(self, weight: weight, bias: bias, eps: eps) },
                           fast: { Fast.layerNorm(self, weight: weight, bias: bias, eps: eps) })
    }

    private func checkPerFeature(_ parameters: [Tensor?], features: Int, _ operation: String) {
        for case let p? in parameters {
            precondition(p.count == features, "\(operation): \(p.count) parameters for \(features) features")
        }
    }
}

// MARK: - Softmax and attention (Reference+Softmax.swift, Reference+Attention.swift)

extension Tensor {
    /// Softmax over the last dimension: each row of scores becomes probabilities summing to one.
    public func softmax() -> Tensor {
        Kernels.run("softmax", reference: { Reference.softmax(self) }, fast: { Fast.softmax(self) })
    }
}

/// Called with the attention probabilities of one block of query rows of one head:
/// `(batch, head, query rows, probabilities (rows.count, S) row-major)`. The cross-attention lesson
/// uses it to see which words each pixel looks at. The fast kernel hands over a few rows at a
/// time, the plain one all rows of a head at once.
public typealias AttentionObserver = (_ batch: Int, _ head: Int, _ rows: Range<Int>,
                                      _ probabilities: UnsafeBufferPointer<Float>) -> Void

/// Multi-head scaled dot-product attention, `softmax(Q Kᵀ / √d + mask) V` for every head.
///
/// - Parameters:
///   - query: `(N, T, H·d)`; key: `(N, S, H·d)`; value: `(N, S, H·dv)`, heads side by side.
///   - heads: `H`.
///   - mask: optional additive mask `(T, S)`: 0 where allowed, `-infinity` where not.
///   - observer: optional, sees the probabilities (see `AttentionObserver`).
/// - Returns: `(N, T, H·dv)`.
public func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, heads: Int,
                                      mask: Tensor? = nil, observer: AttentionObserver? = nil) -> Tensor {
    precondition(query.rank == 3 && key.rank == 3 && value.rank == 3, "attention needs (N, T, H·d) tensors")
    let (batch, t, s) = (query.shape[0], query.shape[1], key.shape[1])
    precondition(key.shape[0] == batch && value.shape[0] == batch && value.shape[1] == s && key.shape[2] == query.shape[2],
                 "attention shapes do not fit: q \(query.shape), k \(key.shape), v \(value.shape)")
    precondition(heads > 0 && query.shape[2] % heads == 0 && value.shape[2] % heads == 0,
                 "\(query.shape[2]) features do not split into \(heads) heads")
    if let mask { precondition(mask.shape == [t, s], "mask must be (\(t), \(s)), got \(mask.shape)") }
    return Kernels.run("attention", reference: {
        Reference.scaledDotProductAttention(query: query, key: key, value: value, heads: heads, mask: mask, observer: observer)
    }, fast: {
        Fast.scaledDotProductAttention(query: query, key: key, value: value, heads: heads, mask: mask, observer: observer)
    })
}

/// CLIP's causal mask `(T, T)`: token `i` may attend to tokens `0...i` only.
public func causalMask(_ length: Int) -> Tensor {
    var mask = Tensor.zeros([length, length])
    for i in 0..<length { for j in (i + 1)..<max(i + 1, length) { mask[i, j] = -Float.infinity } }
    return mask
}

// MARK: - Activations (Reference+Activations.swift)

extension Tensor {
    /// SiLU of every element, `x · σ(x)`.
    public func silu() -> Tensor {
        Kernels.run("silu", reference: { Reference.map(self, TensorCore.silu) }, fast: { Fast.silu(self) })
    }

    /// ReLU of every element, `max(x, 0)`.
    public func relu() -> Tensor {
        Kernels.run("relu", reference: { Reference.map(self, TensorCore.relu) }, fast: { Fast.relu(self) })
    }

    /// Exact GELU of every element, `x · Φ(x)`.
    public func gelu() -> Tensor {
        Kernels.run("gelu", reference: { Reference.map(self, TensorCore.gelu) }, fast: { Fast.gelu(self) })
    }

    /// Quick GELU of every element, `x · σ(1.702 x)` (OpenAI's CLIP).
    public func quickGELU() -> Tensor {
        Kernels.run("quick gelu", reference: { Reference.map(self, TensorCore.quickGELU) }, fast: { Fast.quickGELU(self) })
    }

    /// GEGLU's activation: for `(..., 2F)` features split as `[hidden, gate]`, `hidden · gelu(gate)`,
    /// `(..., F)`.
    public func geglu() -> Tensor {
        precondition(shape[rank - 1] % 2 == 0, "GEGLU needs an even feature count, got \(shape)")
        return Kernels.run("geglu", reference: { Reference.geglu(self) }, fast: { Fast.geglu(self) })
    }
}

// MARK: - Resizing and lookup (Reference+Upsample.swift, Reference+Embedding.swift)

extension Tensor {
    /// Nearest-neighbour upsampling by 2: `(N, C, H, W)` → `(N, C, 2H, 2W)`, each pixel copied
    /// into a 2x2 block. The UNet's and the VAE decoder's Upsample layers do this, then a 3x3 convolution.
    public func upsampledNearest2x() -> Tensor {
        precondition(rank == 4, "upsampledNearest2x needs (N, C, H, W), got \(shape)")
        return upsampledNearest(height: 2 * shape[2], width: 2 * shape[3])
    }

    /// Nearest-neighbour resize of `(N, C, H, W)` to `(N, C, height, width)`, PyTorch's
    /// `F.interpolate(mode="nearest", size=...)`.
    public func upsampledNearest(height: Int, width: Int) -> Tensor {
        precondition(rank == 4 && height > 0 && width > 0, "upsampledNearest: \(shape) to \(height)x\(width)")
        return Kernels.run("upsample", reference: { Reference.upsampleNearest(self, height: height, width: width) },
                           fast: { Fast.upsampleNearest(self, height: height, width: width) })
    }
}

/// An embedding table's rows for `N` sequences of `T` ids: `(N, T, D)` from a `(V, D)` table.
public func embeddingLookup(_ ids: [[Int]], table: Tensor) -> Tensor {
    checkEmbedding(ids, tableShape: table.shape)
    return Kernels.run("embedding", reference: { Reference.embedding(ids, table: table) },
                       fast: { Fast.embedding(ids, table: table) })
}

/// The same lookup in a 16-bit table (the fast version widens only the rows it reads).
public func embeddingLookup(_ ids: [[Int]], table: HalfTensor) -> Tensor {
    checkEmbedding(ids, tableShape: table.shape)
    return Kernels.run("embedding", reference: { Reference.embedding(ids, table: table.widened()) },
                       fast: { Fast.embedding(ids, table: table) })
}

private func checkEmbedding(_ ids: [[Int]], tableShape: [Int]) {
    precondition(tableShape.count == 2, "an embedding table is (V, D), got \(tableShape)")
    precondition(Set(ids.map(\.count)).count <= 1, "embedding: sequences of different lengths")
    for id in ids.joined() {
        precondition(id >= 0 && id < tableShape[0], "id \(id) outside the table of \(tableShape[0])")
    }
}

// MARK: - Elementwise arithmetic (Reference+Elementwise.swift)

extension Tensor {
    /// Applies `f` to every element.
    public func map(_ f: @escaping (Float) -> Float) -> Tensor {
        Kernels.run("map", reference: { Reference.map(self, f) }, fast: { Fast.map(self, f) })
    }

    /// Combines two tensors of the same shape element by element.
    public func zipMap(_ other: Tensor, _ f: @escaping (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        return Kernels.run("zip", reference: { Reference.zip(self, other, f) }, fast: { Fast.zip(self, other, f) })
    }

    /// `a · self + b · other`: the shape of nearly every diffusion update
    /// (`x_t = √ᾱ x₀ + √(1 − ᾱ) ε`, guidance, sampler steps).
    public func scaled(_ a: Float, plus other: Tensor, times b: Float) -> Tensor {
        precondition(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        return Kernels.run("weighted sum", reference: { Reference.weightedSum(self, a, other, b) },
                           fast: { Fast.weightedSum(self, a, other, b) })
    }

    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor {
        precondition(lhs.shape == rhs.shape, "shapes differ: \(lhs.shape) vs \(rhs.shape)")
        return Kernels.run("add", reference: { Reference.zip(lhs, rhs, +) }, fast: { lhs.zipVectors(rhs, +) })
    }

    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor {
        precondition(lhs.shape == rhs.shape, "shapes differ: \(lhs.shape) vs \(rhs.shape)")
        return Kernels.run("subtract", reference: { Reference.zip(lhs, rhs, -) }, fast: { lhs.zipVectors(rhs, -) })
    }

    public static func * (lhs: Tensor, rhs: Tensor) -> Tensor {
        precondition(lhs.shape == rhs.shape, "shapes differ: \(lhs.shape) vs \(rhs.shape)")
        return Kernels.run("multiply", reference: { Reference.zip(lhs, rhs, *) }, fast: { lhs.zipVectors(rhs, *) })
    }

    public static func * (lhs: Tensor, rhs: Float) -> Tensor {
        Kernels.run("scale", reference: { Reference.map(lhs) { $0 * rhs } }, fast: { lhs.mapVectors { $0 * rhs } })
    }

    public static func * (lhs: Float, rhs: Tensor) -> Tensor { rhs * lhs }

    public static func + (lhs: Tensor, rhs: Float) -> Tensor {
        Kernels.run("add scalar", reference: { Reference.map(lhs) { $0 + rhs } }, fast: { lhs.mapVectors { $0 + rhs } })
    }

    /// Adds in place: no new buffer when `lhs` is not shared (residual connections).
    public static func += (lhs: inout Tensor, rhs: Tensor) {
        precondition(lhs.shape == rhs.shape, "shapes differ: \(lhs.shape) vs \(rhs.shape)")
        Kernels.run("add", reference: { lhs = Reference.zip(lhs, rhs, +) }, fast: { Fast.add(rhs, into: &lhs) })
    }

    /// A value per channel added to every pixel of it: `out[n, c, ...] = x[n, c, ...] + v[c]` for
    /// `v` of shape `(C)` (a bias), or `+ v[n, c]` for `(N, C)` (the UNet's timestep, per sample).
    public func addingChannelwise(_ values: Tensor) -> Tensor {
        precondition(rank >= 2, "addingChannelwise needs (N, C, ...), got \(shape)")
        precondition(values.shape == [shape[1]] || values.shape == [shape[0], shape[1]],
                     "cannot add \(values.shape) per channel to \(shape)")
        return Kernels.run("add per channel", reference: { Reference.addChannelwise(self, values) },
                           fast: { Fast.addChannelwise(self, values) })
    }
}
