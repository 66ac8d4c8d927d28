import StableDiffusion

/// A training run's diffusion losses sorted by noise level: every sample's (step, t, loss), and
/// their means per range of t over windows of steps. It shows which noise levels the network
/// learns first and which stay hard.
///
/// ```swift
/// var byT = LossByTimestep(rangeWidth: 200)            // t in 0-199, 200-399, ..., 800-999
/// byT.add(step: 1, report.samples)
/// let curve = byT.curve(range: 0, window: 25)          // mean loss of t < 200 per 25 steps
/// ```
public struct LossByTimestep: Sendable {
    public struct Sample: Sendable {
        public let step: Int, timestep: Int
        public let loss: Float
    }

    /// The width of each range of t; the ranges cover 0..<trainingSteps.
    public let rangeWidth: Int
    public let trainingSteps: Int
    public private(set) var samples: [Sample] = []

    public init(rangeWidth: Int = 200, trainingSteps: Int = 1000) {
        precondition(rangeWidth >= 1 && trainingSteps >= rangeWidth, "ranges of t need a width from 1 to the schedule's length")
        self.rangeWidth = rangeWidth
        self.trainingSteps = trainingSteps
    }

    /// The number of ranges of t.
    public var rangeCount: Int { (trainingSteps + rangeWidth - 1) / rangeWidth }

    /// The t of range `r`.
    public func timesteps(ofRange r: Int) -> ClosedRange<Int> {
        r * rangeWidth...min(trainingSteps, (r + 1) * rangeWidth) - 1
    }

    public mutating func add(step: Int, _ losses: [UNetTrainer.SampleLoss]) {
        samples += losses.map { Sample(step: step, timestep: $0.timestep, loss: $0.loss) }
    }

    /// The mean loss of range `r` over the samples of `steps`, or nil when none fell there.
    public func mean(range r: Int, steps: ClosedRange<Int>) -> Double? {
        let t = timesteps(ofRange: r)
        let losses = samples.filter { steps.contains($0.step) && t.contains($0.timestep) }.map { Double($0.loss) }
        return losses.isEmpty ? nil : losses.reduce(0, +) / Double(losses.count)
    }

    /// Range `r`'s mean loss per window of `window` steps, at the window's last step (windows
    /// with no sample of the range are left out).
    public func curve(range r: Int, window: Int) -> (x: [Double], y: [Double]) {
        guard let last = samples.last?.step, window >= 1 else { return ([], []) }
        var x: [Double] = [], y: [Double] = []
        for end in stride(from: window, through: last + window - 1, by: window) {
            if let value = mean(range: r, steps: end - window + 1...end) {
                x.append(Double(min(end, last)))
                y.append(value)
            }
        }
        return (x, y)
    }
}
