import Foundation
import TensorCore

/// Writes a model as a diffusers folder, the layout of a model downloaded from a hub:
///
///     model_index.json                           which class reads which subfolder
///     scheduler/scheduler_config.json            the noise schedule (PNDM by default, as SD 1.x)
///     tokenizer/vocab.json, merges.txt, ...      the BPE vocabulary
///     text_encoder/config.json, model.safetensors                 CLIPTextModel, `text_model.` keys
///     unet/config.json, diffusion_pytorch_model.safetensors       UNet2DConditionModel
///     vae/config.json, diffusion_pytorch_model.safetensors        AutoencoderKL
///
/// The configs carry the class names diffusers and transformers look for, so the same folder
/// opens with `StableDiffusionPipeline.from_pretrained` in Python. Every file is written to a
/// temporary name and renamed when complete; `model_index.json` comes last, so a folder that has
/// it is whole.
///
/// ```swift
/// try DiffusersFolderWriter.write(to: URL(fileURLWithPath: "tiny-shapes"), configuration: config,
///                                 tokenizer: tokenizer, weights: [.unet: unet, .vae: vae, .textEncoder: text])
/// ```
public enum DiffusersFolderWriter {
    /// The diffusers release whose file layout and config keys these files follow.
    static let diffusersVersion = "0.42.1"

    public static func write(to folder: URL, configuration: StableDiffusionConfiguration, tokenizer: CLIPTokenizer,
                             weights: [Component: [String: Tensor]], precision: HalfTensor.Format? = .float16) throws {
        for component in Component.allCases where weights[component] == nil {
            throw CheckpointError.corrupt(folder.path, "no \(component.rawValue) weights to write")
        }
        do {
            for name in ["scheduler", "tokenizer", "text_encoder", "unet", "vae"] {
                try FileManager.default.createDirectory(at: folder.appendingPathComponent(name), withIntermediateDirectories: true)
            }
        } catch {
            throw CheckpointError.unwritable(folder.path, error.localizedDescription)
        }
        try tokenizer.write(to: folder.appendingPathComponent("tokenizer"))
        try writeJSON(configuration.scheduler, extra: ["_class_name": "PNDMScheduler", "_diffusers_version": diffusersVersion],
                      to: folder.appendingPathComponent("scheduler/scheduler_config.json"))
        try writeJSON(configuration.textEncoder, extra: [
            "architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
            "bos_token_id": tokenizer.startID, "eos_token_id": tokenizer.endID, "pad_token_id": tokenizer.paddingID,
        ], to: folder.appendingPathComponent("text_encoder/config.json"))
        try writeJSON(configuration.unet, extra: ["_class_name": "UNet2DConditionModel", "_diffusers_version": diffusersVersion],
                      to: folder.appendingPathComponent("unet/config.json"))
        try writeJSON(configuration.vae, extra: ["_class_name": "AutoencoderKL", "_diffusers_version": diffusersVersion],
                      to: folder.appendingPathComponent("vae/config.json"))
        let files: [(Component, String)] = [(.textEncoder, "text_encoder/model.safetensors"),
                                            (.unet, "unet/diffusion_pytorch_model.safetensors"),
                                            (.vae, "vae/diffusion_pytorch_model.safetensors")]
        for (component, file) in files {
            try SafeTensorsWriter.write(weights[component]!, precision: precision, to: folder.appendingPathComponent(file).path,
                                        metadata: ["format": "pt"])
        }
        try writeJSON(modelIndex, to: folder.appendingPathComponent("model_index.json"))
    }

    /// `model_index.json`: (library, class) for each part; no safety checker, as in a bare SD 1.x folder.
    static var modelIndex: [String: Any] {
        ["_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusersVersion,
         "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
         "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
         "vae": ["diffusers", "AutoencoderKL"], "safety_checker": [NSNull(), NSNull()],
         "feature_extractor": [NSNull(), NSNull()], "requires_safety_checker": false]
    }

    /// A config encoded under its diffusers keys, with `extra` keys added.
    static func writeJSON<Config: Encodable>(_ config: Config, extra: [String: Any], to url: URL) throws {
        let data = try JSONEncoder().encode(config)
        guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CheckpointError.unwritable(url.path, "the configuration is not a JSON object")
        }
        object.merge(extra) { _, new in new }
        try writeJSON(object, to: url)
    }

    static func writeJSON(_ object: [String: Any], to url: URL) throws {
        do {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            try FileReplacement.write(data + Data("\n".utf8), to: url)
        } catch {
            throw CheckpointError.unwritable(url.path, error.localizedDescription)
        }
    }
}
