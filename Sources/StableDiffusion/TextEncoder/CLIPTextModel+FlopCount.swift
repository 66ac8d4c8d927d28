extension CLIPTextModel {
    /// Floating-point operations of one text encoder evaluation on `batch` prompts of
    /// `maxPositionEmbeddings` (77) tokens, counted like `UNet2DConditionModel.flopCount`: per
    /// layer the four attention projections, the two products of attention (the causal mask's
    /// skipped half included, as a dense kernel computes it) and the two MLP layers.
    ///
    /// SD 1.x's CLIP ViT-L/14 text encoder: 12 layers of width 768 and 3072, 13.3 GFLOP per prompt,
    /// about 1/60 of one UNet evaluation at 512x512.
    public static func flopCount(configuration c: CLIPTextConfiguration, batch: Int = 1) -> Double {
        let tokens = batch * c.maxPositionEmbeddings, d = c.hiddenSize
        let projections = 4 * FlopCount.linear(rows: tokens, inFeatures: d, outFeatures: d)
        let attention = FlopCount.attention(batch: batch, queries: c.maxPositionEmbeddings, keys: c.maxPositionEmbeddings, width: d)
        let mlp = FlopCount.linear(rows: tokens, inFeatures: d, outFeatures: c.intermediateSize)
            + FlopCount.linear(rows: tokens, inFeatures: c.intermediateSize, outFeatures: d)
        return Double(c.numHiddenLayers) * (projections + attention + mlp)
    }
}
