import Foundation
import StableDiffusion
import TensorCore

/// The tiny UNet fixture (SD 1.5's structure with 16 channels, seeded random weights) and the
/// reference tensors diffusers computed with it; see Fixtures/README.md.
enum UNetFixtures {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    static let unetFolder = root.appendingPathComponent("tiny/diffusers/unet")

    /// The tiny UNet's tensors, by diffusers key.
    static func records() throws -> [String: TensorRecord] {
        try SafeTensors.read(path: unetFolder.appendingPathComponent("diffusion_pytorch_model.safetensors").path)
    }

    /// The tiny UNet's `config.json`, decoded.
    static func configuration() throws -> UNetConfiguration {
        let data = try Data(contentsOf: unetFolder.appendingPathComponent("config.json"))
        return try JSONDecoder().decode(UNetConfiguration.self, from: data)
    }

    /// The tiny UNet, loaded; fails if any tensor was left unused.
    static func model() throws -> UNet2DConditionModel {
        let store = WeightStore(try records())
        let unet = try UNet2DConditionModel(Weights(store), configuration: try configuration())
        try store.checkAllUsed()
        return unet
    }

    /// A tensor of `reference/unet.safetensors` (`unet.out`, `unet.time_proj`, ...).
    static func reference(_ name: String) throws -> Tensor {
        let records = try SafeTensors.read(path: root.appendingPathComponent("reference/unet.safetensors").path)
        guard let record = records[name] else { throw CheckpointError.missingKey(name) }
        return record.tensor()
    }
}
