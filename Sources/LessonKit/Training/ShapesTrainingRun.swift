import Foundation
import FrameExport
import StableDiffusion
import TensorCore

/// A `TinyShapesTraining` run that leaves a trail in a folder, for `sd train` and the training lesson:
///
///     DIR/                                   the model, a diffusers folder (once the UNet trains)
///     DIR/training/losses.csv                every step's losses
///     DIR/training/autoencoder-00300.png     held-out pictures and their round trips, with the PSNR
///     DIR/training/samples-01200.png         what the model draws for the sample prompts so far
///     DIR/training/recipe.json               the numbers of the run (reproduce it with them)
///     DIR/training/state.safetensors         everything to resume, while the run is unfinished
///
/// Every file is written whole or not at all. A state and the pictures are saved every
/// `saveEvery` steps and at the end of each phase; the finished run removes its state.
///
/// ```swift
/// let run = try ShapesTrainingRun(folder: "tiny", training: TinyShapesTraining(recipe: TinyShapesRecipe()))
/// try run.run { report in print(report.step, report.losses) }
/// ```
public final class ShapesTrainingRun {
    public let folder: String
    public let training: TinyShapesTraining
    /// Steps between saved states and pictures.
    public var saveEvery: Int
    /// When set, each phase stops early at its share of the time left (see `run`).
    public var deadline: Date?
    /// The held-out pictures' PSNR through the VAE at the last autoencoder picture, in dB.
    public private(set) var lastPSNR: Double?
    /// Called with the path of every picture written.
    public var onPicture: ((String) -> Void)?

    private var rows: [String]
    private var trainingFolder: String { folder + "/training" }
    public var statePath: String { trainingFolder + "/state.safetensors" }

    /// Prepares the folder (refusing one it cannot write to) and, for a resumed run, keeps the
    /// loss rows of the steps already taken.
    public init(folder: String, training: TinyShapesTraining, saveEvery: Int = 100) throws {
        guard saveEvery >= 1 else { throw TrainingError.setting("save interval", value: "\(saveEvery)", mustBe: "at least 1 step") }
        self.folder = folder
        self.training = training
        self.saveEvery = saveEvery
        try ensureDirectory(folder + "/training")
        let header = "phase,step,l1,kl,mse"
        let done = Self.rowCount(before: training)
        let previous = (try? String(contentsOfFile: folder + "/training/losses.csv", encoding: .utf8))?
            .split(separator: "\n").dropFirst().map(String.init) ?? []
        rows = [header] + previous.prefix(done)
        if rows.count - 1 != done {
            rows = [header]   // the old losses do not belong to this state: start the record afresh
        }
        try writeLosses()
    }

    /// Steps of earlier phases plus the steps done in the current one.
    private static func rowCount(before training: TinyShapesTraining) -> Int {
        switch training.phase {
        case .autoencoder: return training.stepsDone
        case .diffusion: return training.recipe.autoencoderSteps + training.stepsDone
        case .finished: return training.recipe.autoencoderSteps + training.recipe.diffusionSteps
        }
    }

    /// Runs to the end. With a `deadline`, the autoencoder phase stops once a third of the time
    /// left at the start has passed and the diffusion phase at the deadline; each phase takes at
    /// least one step, so even a deadline that passes early (a busy machine) leaves every network
    /// trained a little rather than not at all.
    public func run(onStep: (TinyShapesTraining.StepReport) -> Void) throws {
        let start = Date()
        while training.phase != .finished {
            let phase = training.phase
            if let deadline, training.stepsDone > 0, Date() >= phaseEnd(start: start, deadline: deadline) {
                try training.endPhaseEarly()
                try saveAndShow(phase: phase, step: training.recipe.steps(of: phase))
                continue
            }
            let report = try training.step()
            record(report)
            onStep(report)
            if report.step == report.steps || report.step % saveEvery == 0 {
                try saveAndShow(phase: phase, step: report.step)
            }
        }
        try AtomicFile.write(String(decoding: try JSONEncoder.pretty.encode(training.recipe), as: UTF8.self) + "\n",
                             to: trainingFolder + "/recipe.json")
        try? FileManager.default.removeItem(atPath: statePath)
    }

    private func phaseEnd(start: Date, deadline: Date) -> Date {
        training.phase == .autoencoder ? start + deadline.timeIntervalSince(start) / 3 : deadline
    }

    private func record(_ report: TinyShapesTraining.StepReport) {
        let value = { (name: String) in report.losses.first { $0.name == name }.map { String(format: "%.6g", $0.value) } ?? "" }
        rows.append("\(report.phase.rawValue),\(report.step),\(value("L1")),\(value("KL")),\(value("MSE"))")
    }

    private func writeLosses() throws {
        try AtomicFile.write(rows.joined(separator: "\n") + "\n", to: trainingFolder + "/losses.csv")
    }

    /// Saves the state (or the model, at the very end) and the phase's picture.
    private func saveAndShow(phase: TinyShapesTraining.Phase, step: Int) throws {
        try writeLosses()
        if training.phase != .finished { try training.saveState(to: statePath) }
        let name = String(format: "%05d", step)
        switch phase {
        case .autoencoder:
            let vae = try training.releasedVAE()
            let sheet = try ShapesTrainingPictures.roundTrips(vae: vae, step: step)
            lastPSNR = sheet.psnr
            try write(sheet.image, "autoencoder-\(name).png")
        case .diffusion:
            try training.writeModel(to: URL(fileURLWithPath: folder))
            let pipeline = try StableDiffusionPipeline(checkpoint: folder)
            try write(try ShapesTrainingPictures.samples(pipeline, title: "after \(step) diffusion steps"), "samples-\(name).png")
        case .finished:
            break
        }
    }

    private func write(_ image: RGBImage, _ name: String) throws {
        let path = trainingFolder + "/" + name
        try image.writePNG(to: path)
        onPicture?(path)
    }
}

extension JSONEncoder {
    /// Indented, keys sorted: for files people read.
    static var pretty: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}
