import Foundation
import StableDiffusion
import TensorCore

/// The tiny VAE and its reference outputs, from the test fixtures: a diffusers `AutoencoderKL`
/// with SD 1.5's structure but channels 8, 16, 16, 16, 4 GroupNorm groups and random weights
/// (described in the fixtures' README).
enum VAEFixture {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    static var folder: URL { root.appendingPathComponent("tiny/diffusers/vae") }

    static func configuration() throws -> VAEConfiguration {
        let json = try Data(contentsOf: folder.appendingPathComponent("config.json"))
        return try JSONDecoder().decode(VAEConfiguration.self, from: json)
    }

    static func store() throws -> WeightStore {
        WeightStore(try SafeTensors.read(path: folder.appendingPathComponent("diffusion_pytorch_model.safetensors").path))
    }

    /// The tiny VAE, loaded from the diffusers folder.
    static func vae() throws -> AutoencoderKL {
        try AutoencoderKL(Weights(try store()), configuration: try configuration())
    }

    /// All tensors of one reference file, e.g. `vae.safetensors`.
    static func reference(_ file: String) throws -> [String: Tensor] {
        let records = try SafeTensors.read(path: root.appendingPathComponent("reference/\(file)").path)
        return records.mapValues { $0.tensor() }
    }

    /// Writes float32 tensors as a safetensors file (8-byte header length, JSON header, raw data),
    /// to build checkpoints with other layouts in tests.
    static func writeSafeTensors(_ tensors: [String: Tensor], to url: URL) throws {
        var header: [String: Any] = [:]
        var data = Data()
        for name in tensors.keys.sorted() {
            let tensor = tensors[name]!
            let begin = data.count
            tensor.scalars.withUnsafeBytes { data.append(contentsOf: $0) }
            header[name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [begin, data.count]] as [String: Any]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }      // pad with spaces, as the format allows
        var file = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        file.append(data)
        try file.write(to: url)
    }

    /// Pearson correlation of two tensors of the same shape, in Double.
    static func correlation(_ a: Tensor, _ b: Tensor) -> Double {
        let (ma, mb) = (Double(a.mean), Double(b.mean))
        var (ab, aa, bb) = (0.0, 0.0, 0.0)
        for i in 0..<a.count {
            let (x, y) = (Double(a.scalars[i]) - ma, Double(b.scalars[i]) - mb)
            ab += x * y; aa += x * x; bb += y * y
        }
        return ab / (aa * bb).squareRoot()
    }

    /// Mean of |a − b| over all elements.
    static func meanAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
        var sum = 0.0
        for i in 0..<a.count { sum += Double(abs(a.scalars[i] - b.scalars[i])) }
        return Float(sum / Double(max(1, a.count)))
    }
}
