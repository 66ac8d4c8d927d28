/// A resumable training run saves everything that changes from step to step besides the weights:
/// AdamW's running means m and v and its step count, and the moving average with its update count.
/// Restored, the next step is exactly the step the interrupted run would have taken.
///
/// ```swift
/// let saved = update.snapshot()                  // tensors "m/NAME", "v/NAME", "ema/NAME" and two counts
/// var resumed = try ParameterUpdate(optimiser: AdamW(validating: 1e-3), emaDecay: 0.999, parameters: weights)
/// try resumed.restore(saved, parameters: weights)
/// ```
public struct ParameterUpdateSnapshot {
    public var tensors: [String: Tensor]
    public var optimiserSteps: Int
    public var averageUpdates: Int

    public init(tensors: [String: Tensor], optimiserSteps: Int, averageUpdates: Int) {
        self.tensors = tensors
        self.optimiserSteps = optimiserSteps
        self.averageUpdates = averageUpdates
    }
}

extension ParameterUpdate {
    public func snapshot() -> ParameterUpdateSnapshot {
        var tensors: [String: Tensor] = [:]
        for (name, m) in optimiser.firstMoments { tensors["m/" + name] = Tensor(shape: [m.count], scalars: m) }
        for (name, v) in optimiser.secondMoments { tensors["v/" + name] = Tensor(shape: [v.count], scalars: v) }
        for (name, average) in averaged?.shadow ?? [:] { tensors["ema/" + name] = average }
        return ParameterUpdateSnapshot(tensors: tensors, optimiserSteps: optimiser.steps, averageUpdates: averaged?.updates ?? 0)
    }

    /// Puts a snapshot back, checking that it belongs to `parameters`: every moment and average has
    /// its parameter's size, and an average is present exactly when this update keeps one.
    public mutating func restore(_ snapshot: ParameterUpdateSnapshot, parameters: [String: Tensor]) throws {
        var first: [String: [Float]] = [:], second: [String: [Float]] = [:], shadow: [String: Tensor] = [:]
        for (key, tensor) in snapshot.tensors {
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let parameter = parameters[parts[1]] else {
                throw TrainingError.state("'\(key)' belongs to no parameter")
            }
            switch parts[0] {
            case "m", "v":
                guard tensor.count == parameter.count else {
                    throw TrainingError.state("'\(key)' has \(tensor.count) numbers for a parameter of \(parameter.count)")
                }
                if parts[0] == "m" { first[parts[1]] = tensor.scalars } else { second[parts[1]] = tensor.scalars }
            case "ema":
                guard tensor.shape == parameter.shape else {
                    throw TrainingError.state("'\(key)' has shape \(tensor.shape) for a parameter of \(parameter.shape)")
                }
                shadow[parts[1]] = tensor
            default:
                throw TrainingError.state("'\(key)' is not a moment or an average")
            }
        }
        guard Set(first.keys) == Set(second.keys), snapshot.optimiserSteps >= 0, snapshot.averageUpdates >= 0 else {
            throw TrainingError.state("the optimiser's running means are incomplete")
        }
        guard (averaged == nil) == shadow.isEmpty, averaged == nil || shadow.count == parameters.count else {
            throw TrainingError.state("the moving average does not match (\(shadow.count) averaged tensors for \(parameters.count) parameters)")
        }
        optimiser.restore(steps: snapshot.optimiserSteps, firstMoments: first, secondMoments: second)
        if let decay = averaged?.decay {
            averaged = ExponentialMovingAverage(shadow: shadow, updates: snapshot.averageUpdates, decay: decay)
        }
    }
}
