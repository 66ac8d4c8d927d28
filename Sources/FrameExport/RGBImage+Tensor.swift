import TensorCore

/// Which numbers a tensor uses for black and white.
public enum PixelRange: Sendable {
    /// Stable Diffusion's convention: -1 is black, +1 is white. The VAE decoder outputs this.
    case minusOneToOne
    /// 0 is black, 1 is white, as in most image libraries.
    case zeroToOne
}

extension RGBImage {
    /// Converts a `(3, H, W)` or `(1, 3, H, W)` tensor into an image.
    ///
    /// Each value goes through exactly the steps diffusers uses to save a decoded image
    /// (`x / 2 + 0.5`, clamp to `[0, 1]`, times 255, round), so the bytes match what the reference
    /// Python pipeline writes for the same tensor:
    ///
    ///     byte = round(clamp(x / 2 + 0.5, 0, 1) * 255)      (range .minusOneToOne)
    ///     byte = round(clamp(x, 0, 1) * 255)                (range .zeroToOne)
    ///
    /// `round` is NumPy's: halves go to the even neighbour, so 0 becomes 127.5, then 128.
    /// -1 becomes 0 and +1 becomes 255; values outside the range are clamped; NaN becomes 0.
    ///
    /// ```swift
    /// let decoded = vae.decode(latents)             // (1, 3, 512, 512), roughly in [-1, 1]
    /// let image = RGBImage(tensor: decoded)
    /// ```
    public init(tensor: Tensor, range: PixelRange = .minusOneToOne) {
        let shape = tensor.shape
        let isSingleImage = (shape.count == 3 && shape[0] == 3)
            || (shape.count == 4 && shape[0] == 1 && shape[1] == 3)
        precondition(isSingleImage,
                     "an image tensor must be (3, H, W) or (1, 3, H, W), got \(shape); use images(fromBatch:) for a batch")
        let height = shape[shape.count - 2], width = shape[shape.count - 1]
        self.init(planes: tensor.scalars[...], width: width, height: height, range: range)
    }

    /// Splits an `(N, 3, H, W)` batch into `N` images, with the same conversion as `init(tensor:range:)`.
    public static func images(fromBatch tensor: Tensor, range: PixelRange = .minusOneToOne) -> [RGBImage] {
        let shape = tensor.shape
        precondition(shape.count == 4 && shape[1] == 3, "a batch of images must be (N, 3, H, W), got \(shape)")
        let height = shape[2], width = shape[3]
        let imageSize = 3 * height * width
        return (0..<shape[0]).map { n in
            RGBImage(planes: tensor.scalars[(n * imageSize)..<((n + 1) * imageSize)],
                     width: width, height: height, range: range)
        }
    }

    /// Interleaves three planes (all red, then all green, then all blue) into RGB bytes.
    private init(planes: ArraySlice<Float>, width: Int, height: Int, range: PixelRange) {
        let planeSize = width * height
        let start = planes.startIndex
        var pixels = [UInt8](repeating: 0, count: planeSize * 3)
        for i in 0..<planeSize {
            for channel in 0..<3 {
                pixels[i * 3 + channel] = Self.byte(from: planes[start + channel * planeSize + i], range: range)
            }
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// The diffusers conversion of one value, see `init(tensor:range:)`.
    package static func byte(from value: Float, range: PixelRange) -> UInt8 {
        let unit = range == .minusOneToOne ? value / 2 + 0.5 : value
        guard !unit.isNaN else { return 0 }
        let clamped = min(max(unit, 0), 1)
        return UInt8((clamped * 255).rounded(.toNearestOrEven))
    }

    /// The image as a `(1, 3, H, W)` tensor, the layout the VAE encoder expects.
    ///
    /// The inverse of `init(tensor:)`: `x = byte / 255 * 2 - 1` for `.minusOneToOne` (diffusers'
    /// `2 * image - 1`), or `byte / 255` for `.zeroToOne`. Converting back gives the same bytes.
    ///
    /// ```swift
    /// let photo = try RGBImage(contentsOfFile: "cat.jpg").resizedToMultiple(of: 8)
    /// let latents = vae.encode(photo.toTensor())
    /// ```
    public func toTensor(range: PixelRange = .minusOneToOne) -> Tensor {
        let planeSize = width * height
        var scalars = [Float](repeating: 0, count: planeSize * 3)
        for i in 0..<planeSize {
            for channel in 0..<3 {
                let unit = Float(pixels[i * 3 + channel]) / 255
                scalars[channel * planeSize + i] = range == .minusOneToOne ? unit * 2 - 1 : unit
            }
        }
        return Tensor(shape: [1, 3, height, width], scalars: scalars)
    }
}
