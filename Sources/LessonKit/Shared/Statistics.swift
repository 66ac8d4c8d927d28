/// Plain statistics of lists of numbers.
public enum Statistics {
    /// The arithmetic mean Σ x_i / n, summed in Float; 0 for an empty list.
    public static func mean(_ values: [Float]) -> Float {
        values.isEmpty ? 0 : values.reduce(0, +) / Float(values.count)
    }

    /// Pearson's correlation of two lists of the same length:
    /// `Σ (a − ā)(b − b̄) / √(Σ (a − ā)² · Σ (b − b̄)²)`, in [−1, 1]; 0 when either list is flat.
    public static func correlation(_ a: [Float], _ b: [Float]) -> Float {
        let ma = mean(a), mb = mean(b)
        var ab: Float = 0, aa: Float = 0, bb: Float = 0
        for (x, y) in zip(a, b) {
            ab += (x - ma) * (y - mb)
            aa += (x - ma) * (x - ma)
            bb += (y - mb) * (y - mb)
        }
        return aa > 0 && bb > 0 ? ab / (aa * bb).squareRoot() : 0
    }
}
