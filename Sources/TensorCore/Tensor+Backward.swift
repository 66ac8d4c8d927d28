// The backward of every operation in Tensor+Operations.swift, in the same order: given the
// gradient of a loss with respect to an operation's output, the gradients with respect to its
// inputs and weights. Training calls these; their formulas are in the `Reference` files, each
// beside its forward.
//
// Each has a fast twin (Fast/) and follows the kernel switch, except the few that cost nothing
// next to the networks around them (softmax alone, embedding lookup, the losses): those run their
// plain versions, and a kernel tally counts them as such.

// MARK: - Matrix products and convolution

/// The gradients of `x.linear(weight:bias:)`: `dx = dy · W`, `dW = dyᵀ · x`, `db = Σ dy` over tokens.
public func linearBackward(_ dy: Tensor, input x: Tensor, weight: Tensor) -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
    precondition(weight.rank == 2 && x.shape[x.rank - 1] == weight.shape[1] && dy.count / weight.shape[0] == x.count / weight.shape[1],
                 "linearBackward: dy \(dy.shape), input \(x.shape) and weight \(weight.shape) do not fit")
    return Kernels.run("linear backward", reference: { Reference.linearBackward(dy, x: x, weight: weight) },
                       fast: { Fast.linearBackward(dy, x: x, weight: weight) })
}

/// The gradients of `x.conv2d(weight:bias:stride:padding:)` with respect to `x`, the kernel and the bias.
public func conv2dBackward(_ dy: Tensor, input x: Tensor, weight: Tensor, stride: Int = 1, padding: Int = 0)
    -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
    let g = Conv2DGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
    precondition(dy.shape == [x.shape[0], g.outChannels, g.outHeight, g.outWidth],
                 "conv2dBackward: dy \(dy.shape) is not the shape of the convolution's output")
    return Kernels.run("conv2d backward", reference: { Reference.conv2dBackward(dy, x: x, weight: weight, stride: stride, padding: padding) },
                       fast: { Fast.conv2dBackward(dy, x: x, weight: weight, stride: stride, padding: padding) })
}

// MARK: - Normalisation

/// The gradients of `x.groupNorm(groups:weight:bias:eps:silu:)` with respect to `x`, γ and β.
public func groupNormBackward(_ dy: Tensor, input x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                              silu: Bool = false) -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
    precondition(dy.shape == x.shape, "groupNormBackward: dy \(dy.shape) for input \(x.shape)")
    return Kernels.run("group norm backward",
                       reference: { Reference.groupNormBackward(dy, x: x, groups: groups, weight: weight, bias: bias, eps: eps, silu: silu) },
                       fast: { Fast.groupNormBackward(dy, x: x, groups: groups, weight: weight, bias: bias, eps: eps, silu: silu) })
}

/// The gradients of `x.layerNorm(weight:bias:eps:)` with respect to `x`, γ and β.
public func layerNormBackward(_ dy: Tensor, input x: Tensor, weight: Tensor?, eps: Float = 1e-5)
    -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
    precondition(dy.shape == x.shape, "layerNormBackward: dy \(dy.shape) for input \(x.shape)")
    return Kernels.run("layer norm backward", reference: { Reference.layerNormBackward(dy, x: x, weight: weight, eps: eps) },
                       fast: { Fast.layerNormBackward(dy, x: x, weight: weight, eps: eps) })
}

// MARK: - Softmax and attention

/// The gradient of `softmax()` with respect to its scores, from its output `p`.
public func softmaxBackward(_ dy: Tensor, output p: Tensor) -> Tensor {
    precondition(dy.shape == p.shape, "softmaxBackward: dy \(dy.shape) for output \(p.shape)")
    return Kernels.runPlain("softmax backward") { Reference.softmaxBackward(dy, output: p) }
}

/// The gradients of `scaledDotProductAttention` with respect to the queries, keys and values.
public func scaledDotProductAttentionBackward(_ dy: Tensor, query: Tensor, key: Tensor, value: Tensor, heads: Int,
                                              mask: Tensor? = nil) -> (dQuery: Tensor, dKey: Tensor, dValue: Tensor) {
    precondition(dy.shape == [query.shape[0], query.shape[1], value.shape[2]],
                 "attention backward: dy \(dy.shape) for queries \(query.shape) and values \(value.shape)")
    return Kernels.run("attention backward",
                       reference: { Reference.scaledDotProductAttentionBackward(dy, query: query, key: key, value: value, heads: heads, mask: mask) },
                       fast: { Fast.scaledDotProductAttentionBackward(dy, query: query, key: key, value: value, heads: heads, mask: mask) })
}

// MARK: - Activations

extension Tensor {
    /// The gradient of `silu()` at this input: `dy · silu'(x)`.
    public func siluBackward(_ dy: Tensor) -> Tensor {
        Kernels.run("silu backward", reference: { Reference.mapBackward(dy, x: self, derivative: siluDerivative) },
                    fast: { Fast.siluBackward(dy, x: self) })
    }

    /// The gradient of `gelu()` at this input: `dy · gelu'(x)`.
    public func geluBackward(_ dy: Tensor) -> Tensor {
        Kernels.run("gelu backward", reference: { Reference.mapBackward(dy, x: self, derivative: geluDerivative) },
                    fast: { Fast.geluBackward(dy, x: self) })
    }

    /// The gradient of `quickGELU()` at this input.
    public func quickGELUBackward(_ dy: Tensor) -> Tensor {
        Kernels.run("quick gelu backward", reference: { Reference.mapBackward(dy, x: self, derivative: quickGELUDerivative) },
                    fast: { Fast.quickGELUBackward(dy, x: self) })
    }

    /// The gradient of `geglu()` at this input (`(..., 2F)`), from `dy` `(..., F)`.
    public func gegluBackward(_ dy: Tensor) -> Tensor {
        Kernels.run("geglu backward", reference: { Reference.gegluBackward(dy, x: self) }, fast: { Fast.gegluBackward(dy, x: self) })
    }
}

// MARK: - Resizing, lookup, elementwise

/// The gradient of `upsampledNearest(height:width:)` with respect to its input of `inputShape`.
public func upsampleNearestBackward(_ dy: Tensor, inputShape: [Int]) -> Tensor {
    Kernels.run("upsample backward", reference: { Reference.upsampleNearestBackward(dy, inputShape: inputShape) },
                fast: { Fast.upsampleNearestBackward(dy, inputShape: inputShape) })
}

/// The gradient of `embeddingLookup(ids, table:)` with respect to the table.
public func embeddingBackward(_ dy: Tensor, ids: [[Int]], tableShape: [Int]) -> Tensor {
    Kernels.runPlain("embedding backward") { Reference.embeddingBackward(dy, ids: ids, tableShape: tableShape) }
}

/// The gradient of `x.addingChannelwise(values)` with respect to the values (the gradient with
/// respect to `x` is `dy` itself).
public func addChannelwiseBackward(_ dy: Tensor, valuesShape: [Int]) -> Tensor {
    Kernels.run("add per channel backward", reference: { Reference.addChannelwiseBackward(dy, valuesShape: valuesShape) },
                fast: { Fast.addChannelwiseBackward(dy, valuesShape: valuesShape) })
}

// MARK: - Losses (Reference+Losses.swift)

/// Mean squared error `(1/m) Σ (a − b)²` and its gradient with respect to `a`.
public func meanSquaredError(_ a: Tensor, _ b: Tensor) -> (loss: Float, gradient: Tensor) {
    precondition(a.shape == b.shape, "meanSquaredError: shapes \(a.shape) and \(b.shape) differ")
    return Kernels.runPlain("mse loss") { Reference.meanSquaredError(a, b) }
}

/// Mean absolute error `(1/m) Σ |a − b|` and its gradient with respect to `a`.
public func meanAbsoluteError(_ a: Tensor, _ b: Tensor) -> (loss: Float, gradient: Tensor) {
    precondition(a.shape == b.shape, "meanAbsoluteError: shapes \(a.shape) and \(b.shape) differ")
    return Kernels.runPlain("l1 loss") { Reference.meanAbsoluteError(a, b) }
}

/// The VAE's KL term for `N(mean, e^logvar)` against `N(0, 1)`, averaged over the batch, with its gradients.
public func gaussianKL(mean: Tensor, logvar: Tensor) -> (loss: Float, dMean: Tensor, dLogvar: Tensor) {
    precondition(mean.shape == logvar.shape, "gaussianKL: shapes \(mean.shape) and \(logvar.shape) differ")
    return Kernels.runPlain("kl loss") { Reference.gaussianKL(mean: mean, logvar: logvar) }
}
