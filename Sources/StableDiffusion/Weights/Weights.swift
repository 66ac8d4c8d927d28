import Foundation
import TensorCore

/// All tensors of one model component, by name, remembering which ones were used.
///
/// Loading a component is a walk down its module tree: each module asks for its own tensors by
/// the same names the checkpoint uses, through a `Weights` view scoped to its path. When the walk is
/// over, `checkAllUsed()` reports every tensor nobody asked for, so a wrong or missing rename is
/// an error with a key name, never a silently random layer.
public final class WeightStore: @unchecked Sendable {
    private let records: [String: TensorRecord]
    /// Tensors already in memory, by key: the Float32 weights of a network being trained.
    private let inMemory: [String: Tensor]
    private var used = Set<String>()
    private let lock = NSLock()
    /// Makes up a tensor for any key asked for (benchmarks: real shapes, no checkpoint).
    private let fabricate: ((String, [Int]) -> Tensor)?
    /// The format fabricated layer weights are rounded to and kept in, as a 16-bit checkpoint's are.
    private let fabricatedPrecision: HalfTensor.Format?
    /// Low-rank changes merged into weights as they are read (LoRA), by key.
    private var updates: [String: [LowRankUpdate]] = [:]

    public init(_ records: [String: TensorRecord]) {
        self.records = records
        self.inMemory = [:]
        self.fabricate = nil
        self.fabricatedPrecision = nil
    }

    /// A store of tensors in memory, by key (a network being trained is built from its current
    /// weights this way after every optimiser step).
    public init(tensors: [String: Tensor]) {
        self.records = [:]
        self.inMemory = tensors
        self.fabricate = nil
        self.fabricatedPrecision = nil
    }

    /// A store with no file behind it that answers every request with `fabricate(key, shape)`.
    /// Building a network from it gives the real architecture with made-up weights. With
    /// `precision`, layer weights (`parameter(_:shape:)`) are kept in that 16-bit format.
    public init(fabricating fabricate: @escaping (String, [Int]) -> Tensor, precision: HalfTensor.Format? = nil) {
        self.records = [:]
        self.inMemory = [:]
        self.fabricate = fabricate
        self.fabricatedPrecision = precision
    }

    /// The same tensors with low-rank changes added to some weights as they are read (see `LoRA`):
    /// a weight becomes W + Σ update.delta, rounded back to the precision the file stores it in.
    public func merging(_ more: [String: [LowRankUpdate]]) -> WeightStore {
        precondition(fabricate == nil && inMemory.isEmpty, "LoRAs merge into a checkpoint's tensors")
        let store = WeightStore(records)
        store.updates = updates.merging(more) { $0 + $1 }
        return store
    }

    /// The weights a merge changes, by key.
    public var updatedKeys: [String] { updates.keys.sorted() }

    public var keys: [String] { (Array(records.keys) + Array(inMemory.keys)).sorted() }
    public func record(_ key: String) -> TensorRecord? { records[key] }

    /// The tensor `key`, which must have `shape`; widened to Float32.
    public func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        if let fabricate { return fabricate(key, shape) }
        if let tensor = inMemory[key] {
            guard tensor.shape == shape else { throw CheckpointError.wrongShape(key: key, expected: shape, found: tensor.shape) }
            lock.lock(); used.insert(key); lock.unlock()
            return tensor
        }
        guard let record = records[key] else { throw CheckpointError.missingKey(key) }
        guard record.shape == shape else {
            throw CheckpointError.wrongShape(key: key, expected: shape, found: record.shape)
        }
        lock.lock(); used.insert(key); lock.unlock()
        return merged(record, key: key)
    }

    /// A weight with its low-rank changes added, in Float32 (the record itself when it has none).
    private func merged(_ record: TensorRecord, key: String) -> Tensor {
        var weight = record.copiedOut()
        for update in updates[key] ?? [] {
            weight = weight + update.delta().reshaped(record.shape)
        }
        return weight
    }

    /// The tensor `key` as a `Parameter`: 16-bit weights stay in the mapped file (see `Parameter`).
    public func parameter(_ key: String, shape: [Int]) throws -> Parameter {
        if let fabricate {
            let tensor = fabricate(key, shape)
            return fabricatedPrecision.map { Parameter(HalfTensor(rounding: tensor, to: $0)) } ?? Parameter(tensor)
        }
        if inMemory[key] != nil { return Parameter(try tensor(key, shape: shape)) }
        guard let record = records[key] else { throw CheckpointError.missingKey(key) }
        guard record.shape == shape else {
            throw CheckpointError.wrongShape(key: key, expected: shape, found: record.shape)
        }
        lock.lock(); used.insert(key); lock.unlock()
        guard updates[key] != nil else { return Parameter(record) }
        // Merged once, kept at the checkpoint's precision: the step time does not change.
        let weight = merged(record, key: key)
        switch record.type {
        case .float16: return Parameter(HalfTensor(rounding: weight, to: .float16))
        case .bfloat16: return Parameter(HalfTensor(rounding: weight, to: .bfloat16))
        case .float32, .int64: return Parameter(weight)
        }
    }

    /// Gives back the resident memory of every tensor whose key starts with `prefix` and that is
    /// still in the memory-mapped file (16-bit weights are used from there directly): for a
    /// network, or a block of one, that is done for now, so the next one has the memory. Its layers stay usable; their pages are read in again from the file cache
    /// when they next run.
    public func releaseMappedPages(prefix: String = "") {
        for (key, record) in records where key.hasPrefix(prefix) { record.file.releasePages(record.byteRange) }
    }

    /// Marks keys as deliberately ignored (e.g. `position_ids`, which is just 0..<77).
    public func ignore(_ key: String) {
        lock.lock(); used.insert(key); lock.unlock()
    }

    /// Keys present in the checkpoint that no module asked for.
    public var unusedKeys: [String] {
        lock.lock(); defer { lock.unlock() }
        return keys.filter { !used.contains($0) }
    }

    /// Throws `unexpectedKeys` if any tensor was never used.
    public func checkAllUsed() throws {
        let unused = unusedKeys
        if !unused.isEmpty { throw CheckpointError.unexpectedKeys(unused) }
    }
}

/// A view of a `WeightStore` scoped to one module's path, e.g. `down_blocks.0.resnets.1.`.
///
/// ```swift
/// let conv = try Conv2d(weights["conv1"], inChannels: 320, outChannels: 320, kernelSize: 3, padding: 1)
/// // reads "down_blocks.0.resnets.1.conv1.weight" (320, 320, 3, 3) and "...conv1.bias" (320)
/// ```
public struct Weights: Sendable {
    public let store: WeightStore
    public let prefix: String

    public init(_ store: WeightStore, prefix: String = "") {
        self.store = store
        self.prefix = prefix
    }

    /// The view of a child module: `weights["attn1"]["to_q"]` or `weights["resnets.0"]`.
    public subscript(_ child: String) -> Weights {
        Weights(store, prefix: prefix + child + ".")
    }

    /// The tensor `name` of this module, checked against `shape`.
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        try store.tensor(prefix + name, shape: shape)
    }

    /// The weight `name` of this module, kept in 16 bits when the checkpoint stores it so.
    public func parameter(_ name: String, shape: [Int]) throws -> Parameter {
        try store.parameter(prefix + name, shape: shape)
    }

    /// Full key of a tensor of this module, for messages.
    public func key(_ name: String) -> String { prefix + name }
}
