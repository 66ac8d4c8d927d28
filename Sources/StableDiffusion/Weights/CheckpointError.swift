/// Everything that can be wrong with a checkpoint, each with a message that names the file and the
/// problem, so the user knows what to fix.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case missing(String)
    case notAFile(String)
    case unreadable(String, String)
    case unwritable(String, String)
    case corrupt(String, String)
    case unsupportedType(String, name: String, type: String)
    case unsupportedModel(String, String)
    case unrecognised(String)
    case missingKey(String)
    case unexpectedKeys([String])
    case wrongShape(key: String, expected: [Int], found: [Int])
    case missingComponent(String, Component)
    case badLoRA(String, String)

    public var description: String {
        switch self {
        case .missing(let path):
            return "checkpoint '\(path)' does not exist"
        case .notAFile(let path):
            return "'\(path)' is a directory but not a diffusers model folder (no model_index.json)"
        case .unreadable(let path, let reason):
            return "cannot read '\(path)': \(reason)"
        case .unwritable(let path, let reason):
            return "cannot write '\(path)': \(reason)"
        case .corrupt(let path, let reason):
            return "'\(path)' is not a valid checkpoint: \(reason)"
        case .unsupportedType(let path, let name, let type):
            return "'\(path)': tensor '\(name)' has element type \(type); supported are F32, F16, BF16 and I64"
        case .unsupportedModel(let path, let what):
            return "'\(path)' looks like \(what), which is not supported yet; this project runs Stable Diffusion 1.x (1.4, 1.5 and their fine-tunes)"
        case .unrecognised(let path):
            return "'\(path)' is neither a .safetensors file nor a diffusers folder with model_index.json"
        case .missingKey(let key):
            return "the checkpoint has no tensor '\(key)'"
        case .unexpectedKeys(let keys):
            let shown = keys.prefix(8).joined(separator: ", ")
            return "the checkpoint has \(keys.count) tensor(s) this model does not use: \(shown)\(keys.count > 8 ? ", ..." : "")"
        case .missingComponent(let path, .vae):
            return "'\(path)' holds no VAE (no first_stage_model.* tensors, or no vae/ folder); give one with --vae FILE|FOLDER, for example a standalone SD VAE file such as vae-ft-mse-840000-ema-pruned.safetensors"
        case .missingComponent(let path, .textEncoder):
            return "'\(path)' holds no text encoder (no cond_stage_model.transformer.* tensors, or no text_encoder/ folder); Stable Diffusion 1.x needs CLIP ViT-L/14's text encoder: use the complete checkpoint this file was cut from"
        case .missingComponent(let path, .unet):
            return "'\(path)' holds no UNet (no model.diffusion_model.* tensors, or no unet/ folder)"
        case .badLoRA(let path, let reason):
            return "'\(path)' cannot be used as a LoRA: \(reason)"
        case .wrongShape(let key, let expected, let found):
            return "tensor '\(key)' has shape \(found), expected \(expected)"
        }
    }
}
