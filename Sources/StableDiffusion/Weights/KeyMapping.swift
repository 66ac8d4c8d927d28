import Foundation

/// The three networks a Stable Diffusion checkpoint holds.
public enum Component: String, CaseIterable, Sendable {
    case textEncoder = "text_encoder"
    case unet
    case vae
}

/// Every key rename between the original single-file layout and the diffusers layout, in one table.
///
/// The original CompVis checkpoints (`sd-v1-5.safetensors`, `.ckpt`) name tensors after the
/// LDM code that trained them (`model.diffusion_model.input_blocks.4.1.proj_in.weight`); diffusers
/// names them after its module tree (`down_blocks.1.attentions.0.proj_in.weight`), and so does this
/// project's Swift code. Loading a single file is: rename every key with this table, then walk the
/// same module tree as for a diffusers folder.
///
/// A rename is a *prefix* rule (the longest matching prefix wins) that also says which component
/// the tensor belongs to; then *inner* rules rename module names inside residual blocks and VAE
/// attention, wherever they appear. SD 1.x's UNet has 4 levels with 2 residual blocks each (3 on
/// the way up); the LDM code numbers its blocks in one flat list, so the table spells out which flat
/// index is which level and layer.
public enum KeyMapping {
    /// Prefix rules: original prefix → (component, diffusers prefix).
    public static let prefixRules: [(original: String, component: Component, renamed: String)] = {
        var rules: [(String, Component, String)] = []
        func unet(_ from: String, _ to: String) { rules.append(("model.diffusion_model." + from, .unet, to)) }
        func vae(_ from: String, _ to: String) { rules.append(("first_stage_model." + from, .vae, to)) }

        // UNet, way down: input_blocks.0 is conv_in; then per level, two (resnet, transformer) pairs
        // and a downsampler (none after the last level).
        unet("time_embed.0.", "time_embedding.linear_1.")
        unet("time_embed.2.", "time_embedding.linear_2.")
        unet("input_blocks.0.0.", "conv_in.")
        for level in 0..<4 {
            for layer in 0..<2 {
                let flat = 1 + level * 3 + layer
                unet("input_blocks.\(flat).0.", "down_blocks.\(level).resnets.\(layer).")
                unet("input_blocks.\(flat).1.", "down_blocks.\(level).attentions.\(layer).")
            }
            if level < 3 { unet("input_blocks.\(3 + level * 3).0.op.", "down_blocks.\(level).downsamplers.0.conv.") }
        }
        // Middle: resnet, transformer, resnet.
        unet("middle_block.0.", "mid_block.resnets.0.")
        unet("middle_block.1.", "mid_block.attentions.0.")
        unet("middle_block.2.", "mid_block.resnets.1.")
        // Way up: three (resnet, transformer) pairs per level; the upsampler sits in the last one,
        // after the transformer (index 2), or at index 1 in the first level, which has no attention.
        for level in 0..<4 {
            for layer in 0..<3 {
                let flat = level * 3 + layer
                unet("output_blocks.\(flat).0.", "up_blocks.\(level).resnets.\(layer).")
                if level > 0 { unet("output_blocks.\(flat).1.", "up_blocks.\(level).attentions.\(layer).") }
            }
            if level == 0 { unet("output_blocks.2.1.conv.", "up_blocks.0.upsamplers.0.conv.") }
            if level == 1 || level == 2 { unet("output_blocks.\(level * 3 + 2).2.conv.", "up_blocks.\(level).upsamplers.0.conv.") }
        }
        unet("out.0.", "conv_norm_out.")
        unet("out.2.", "conv_out.")

        // VAE: "down.i.block.j" and "up.i.block.j". The original code numbers the decoder's up
        // levels by resolution, like the encoder's (up.0 is the full-size image) and runs them from
        // up.3 down; diffusers numbers them in the order they run (up_blocks.0 is the smallest).
        for side in ["encoder", "decoder"] {
            vae("\(side).mid.block_1.", "\(side).mid_block.resnets.0.")
            vae("\(side).mid.attn_1.", "\(side).mid_block.attentions.0.")
            vae("\(side).mid.block_2.", "\(side).mid_block.resnets.1.")
            vae("\(side).norm_out.", "\(side).conv_norm_out.")
        }
        for level in 0..<4 {
            for layer in 0..<2 { vae("encoder.down.\(level).block.\(layer).", "encoder.down_blocks.\(level).resnets.\(layer).") }
            vae("encoder.down.\(level).downsample.conv.", "encoder.down_blocks.\(level).downsamplers.0.conv.")
            for layer in 0..<3 { vae("decoder.up.\(level).block.\(layer).", "decoder.up_blocks.\(3 - level).resnets.\(layer).") }
            vae("decoder.up.\(level).upsample.conv.", "decoder.up_blocks.\(3 - level).upsamplers.0.conv.")
        }
        vae("", "")   // everything else in the VAE keeps its name (conv_in, quant_conv, ...)

        // CLIP text encoder: the same names as transformers', under a longer prefix. Some fine-tunes
        // were saved from a text encoder without the `text_model.` level (`...transformer.encoder.*`);
        // the shorter prefix puts it back.
        rules.append(("cond_stage_model.transformer.text_model.", .textEncoder, "text_model."))
        rules.append(("cond_stage_model.transformer.", .textEncoder, "text_model."))
        rules.append(("model.diffusion_model.", .unet, ""))
        return rules
    }()

    /// Inner rules: module names inside blocks that the two code bases spell differently. They
    /// apply within one component only: the UNet's transformer also has `attentions.0.norm`, which
    /// must keep its name.
    public static let innerRules: [(component: Component, original: String, renamed: String)] = [
        // Residual blocks of the UNet
        (.unet, "in_layers.0.", "norm1."), (.unet, "in_layers.2.", "conv1."),
        (.unet, "emb_layers.1.", "time_emb_proj."),
        (.unet, "out_layers.0.", "norm2."), (.unet, "out_layers.3.", "conv2."),
        (.unet, "skip_connection.", "conv_shortcut."),
        // Residual blocks of the VAE
        (.vae, "nin_shortcut.", "conv_shortcut."),
        // The VAE's mid-block attention: 1x1 convolutions (C, C, 1, 1) in the original layout
        (.vae, "mid_block.attentions.0.norm.", "mid_block.attentions.0.group_norm."),
        (.vae, "mid_block.attentions.0.q.", "mid_block.attentions.0.to_q."),
        (.vae, "mid_block.attentions.0.k.", "mid_block.attentions.0.to_k."),
        (.vae, "mid_block.attentions.0.v.", "mid_block.attentions.0.to_v."),
        (.vae, "mid_block.attentions.0.proj_out.", "mid_block.attentions.0.to_out.0."),
    ]

    /// The original name of a diffusers key: `rename` run backwards (the longest renamed prefix
    /// wins, inner rules undone). Used to match LoRAs trained on the original code, whose kohya
    /// names spell the original modules (`lora_unet_input_blocks_1_1_proj_in`).
    public static func originalName(_ key: String, component: Component) -> String? {
        var best: (original: String, component: Component, renamed: String)?
        for rule in prefixRules where rule.component == component && key.hasPrefix(rule.renamed) {
            // The catch-all rules (empty renamed prefix) only when nothing more specific applies.
            if best == nil || rule.renamed.count > best!.renamed.count { best = rule }
        }
        guard let rule = best else { return nil }
        // Inner rules are undone where renaming made them: the VAE attention's (which spell their
        // context, `mid_block.attentions.0.`) anywhere, the residual blocks' at the start of the
        // block's own names only (a transformer's `norm1` is `norm1` in both spellings).
        var full = key
        for inner in innerRules where inner.component == component && inner.renamed.hasPrefix("mid_block.") {
            full = full.replacingOccurrences(of: inner.renamed, with: inner.original)
        }
        var rest = String(full.dropFirst(rule.renamed.count))
        for inner in innerRules where inner.component == component && !inner.renamed.hasPrefix("mid_block.") {
            if rest.hasPrefix(inner.renamed) { rest = inner.original + rest.dropFirst(inner.renamed.count) }
        }
        let original = rule.original + rest
        return rename(original).map { $0.0 == component && $0.1 == key } == true ? original : nil
    }

    /// Names that diffusers folders (and standalone files in diffusers naming) spell in more than
    /// one way, brought to the one the Swift modules ask for:
    /// - the text encoder saved by transformers 5 has no `text_model.` level
    ///   (`encoder.layers.0.mlp.fc1.weight`); older versions wrote `text_model.encoder.layers...`;
    /// - VAE attention saved by diffusers before 0.14 names its projections `query`, `key`, `value`
    ///   and `proj_attn` (still so in widely shared VAE files); today's names are `to_q`, `to_k`,
    ///   `to_v` and `to_out.0`.
    public static func diffusersName(_ key: String, component: Component) -> String {
        switch component {
        case .textEncoder:
            return key.hasPrefix("text_model.") ? key : "text_model." + key
        case .vae:
            guard key.contains(".attentions.") else { return key }
            var name = key
            for (old, new) in [(".query.", ".to_q."), (".key.", ".to_k."), (".value.", ".to_v."), (".proj_attn.", ".to_out.0.")] {
                name = name.replacingOccurrences(of: old, with: new)
            }
            return name
        case .unet:
            return key
        }
    }

    /// The tiny autoencoder (TAESD) as its authors publish it: two files, each the state of one
    /// `nn.Sequential`, keyed by layer index (`3.conv.0.weight`). diffusers' `AutoencoderTiny`
    /// keeps the same layers under `encoder.layers.N` and `decoder.layers.N`, except that the
    /// authors' decoder starts with a weightless clamp at index 0, which diffusers applies in its
    /// forward pass instead: the authors' decoder index N is diffusers' N − 1.
    public static func tinyAutoencoderName(_ key: String, decoderFile: Bool) -> String? {
        guard let dot = key.firstIndex(of: "."), let index = Int(key[..<dot]) else { return nil }
        let rest = key[dot...]
        return decoderFile ? (index >= 1 ? "decoder.layers.\(index - 1)\(rest)" : nil) : "encoder.layers.\(index)\(rest)"
    }

    /// Tensors original files carry that no network uses: the training schedule's buffers (the
    /// samplers recompute them from β) and CLIP's `position_ids` (just 0..<77).
    public static func isIgnored(_ key: String) -> Bool {
        let scheduleBuffers: Set<String> = [
            "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
            "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
            "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
            "posterior_mean_coef1", "posterior_mean_coef2", "logvar",
        ]
        return scheduleBuffers.contains(key) || key.hasSuffix("embeddings.position_ids")
            || key.hasPrefix("model_ema.")
    }

    /// Renames one original key: `(component, diffusers key)`, or nil when no rule applies.
    public static func rename(_ key: String) -> (Component, String)? {
        var best: (original: String, component: Component, renamed: String)?
        for rule in prefixRules where key.hasPrefix(rule.original) {
            if best == nil || rule.original.count > best!.original.count { best = rule }
        }
        guard let rule = best else { return nil }
        var name = rule.renamed + key.dropFirst(rule.original.count)
        for inner in innerRules where inner.component == rule.component {
            name = name.replacingOccurrences(of: inner.original, with: inner.renamed)
        }
        return (rule.component, name)
    }
}
