/// The plain version of every tensor operation Stable Diffusion calls: each one the loop nest of
/// its formula, meant to be read in one sitting.
///
/// Read these before anything in `Fast/`. Each function says its formula and its shapes, and
/// computes exactly that, one output number at a time, with no pointers, no vectors and no
/// threads. They are the definitions the fast kernels are tested against, and with
/// `SD_KERNELS=reference` (or `--kernels reference`) the whole model runs on them: the same
/// picture, up to the order in which floats are added, only much slower.
///
/// Tensors are row-major (see `Tensor`), so an element's place in `scalars` is worked out by hand,
/// written the way the shape reads: for `x` of shape `(N, C, H, W)`,
///
///     x[n, c, y, x]  is  xs[((n * C + c) * H + y) * W + x]
///
/// Shape letters: `N` batch, `C` channels, `H`/`W` height and width, `T` tokens (query length),
/// `S` key length, `D` features, `K` the depth a product sums over.
///
/// ```swift
/// let y = Reference.conv2d(x, weight: w, bias: b, stride: 1, padding: 1)   // seven loops
/// let z = x.conv2d(weight: w, bias: b, padding: 1)                         // the switch decides
/// ```
///
/// Reading order: `Reference+Matmul.swift` (matmul, linear), `Reference+Conv2d.swift`,
/// `Reference+GroupNorm.swift`, `Reference+LayerNorm.swift`, `Reference+Softmax.swift`,
/// `Reference+Attention.swift`, `Reference+Activations.swift`, `Reference+Upsample.swift`,
/// `Reference+Embedding.swift`, `Reference+Elementwise.swift`, `Reference+Losses.swift`.
///
/// Each file ends with the backward of its operations (`linearBackward` after `linear`, as
/// llm.c puts `layernorm_backward` after `layernorm_forward`): given the gradient of a loss with
/// respect to the output, the gradients with respect to the inputs and weights, by the chain rule
/// through the same formula. Tests hold each to finite differences of its forward.
public enum Reference {}
