import Foundation
import StableDiffusion
import Testing

@Suite("Scheduler configuration, errors and img2img steps")
struct SchedulerConfigurationTests {
    /// Stable Diffusion 1.5's scheduler/scheduler_config.json as published, with keys we ignore.
    static let sd15JSON = """
        {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
         "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
         "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
         "trained_betas": null, "clip_sample": false}
        """

    func decode(_ json: String) throws -> SchedulerConfiguration {
        try JSONDecoder().decode(SchedulerConfiguration.self, from: Data(json.utf8))
    }

    @Test("SD 1.5's scheduler_config.json decodes to .sd15, ignoring unknown keys")
    func decodesSD15() throws {
        #expect(try decode(Self.sd15JSON) == .sd15)
        #expect(try decode("{}") == .sd15)
        var custom = try decode(#"{"timestep_spacing": "trailing", "steps_offset": 0, "clip_sample": true}"#)
        #expect(custom.timestepSpacing == .trailing && custom.stepsOffset == 0 && custom.clipSample)
        custom.betaSchedule = .linear
        #expect(try decode(String(decoding: JSONEncoder().encode(custom), as: UTF8.self)) == custom)
    }

    @Test("unsupported settings give errors that name them")
    func unsupportedSettings() throws {
        #expect(throws: SchedulerError.unsupportedSetting(key: "beta_schedule", value: "sigmoid",
                                                          supported: ["scaled_linear", "linear", "squaredcos_cap_v2"])) {
            try decode(#"{"beta_schedule": "sigmoid"}"#)
        }
        #expect(throws: SchedulerError.trainedBetasNotSupported) { try decode(#"{"trained_betas": [0.1, 0.2]}"#) }
        let vPrediction = try decode(#"{"prediction_type": "v_prediction"}"#)
        for kind in SchedulerKind.allCases {
            #expect(throws: SchedulerError.unsupportedPredictionType("v_prediction")) {
                try kind.makeScheduler(steps: 20, configuration: vPrediction)
            }
        }
        #expect(SchedulerError.unsupportedPredictionType("v_prediction").description.contains("not supported"))
        var noSkip = SchedulerConfiguration.sd15
        noSkip.skipPrkSteps = false
        #expect(throws: SchedulerError.self) { try PNDMScheduler(configuration: noSkip, steps: 20) }
        #expect(throws: SchedulerError.self) { try DDIMScheduler(steps: 20, eta: -1) }
    }

    @Test("step counts outside 1...1000 are refused", arguments: SchedulerKind.allCases)
    func stepCounts(kind: SchedulerKind) {
        for steps in [0, -3, 1001] {
            #expect(throws: SchedulerError.invalidStepCount(steps, trainingSteps: 1000)) {
                try kind.makeScheduler(steps: steps)
            }
        }
    }

    @Test("img2img runs the last int(steps × strength) steps, as diffusers' get_timesteps")
    func imageToImageSteps() throws {
        let euler = try EulerDiscreteScheduler(steps: 25)
        let plan = try euler.imageToImageSteps(strength: 0.6)            // int(15.0) = 15 steps
        #expect(plan.stepIndices == 10..<25 && plan.noiseTimestep == euler.timesteps[10])
        #expect(try PNDMScheduler(steps: 25).imageToImageSteps(strength: 0.6).stepIndices == 10..<26)
        #expect(try euler.imageToImageSteps(strength: 1).stepIndices == 0..<25)
        #expect(try DDIMScheduler(steps: 7).imageToImageSteps(strength: 0.3).stepIndices == 5..<7)  // int(2.1) = 2
        #expect(throws: SchedulerError.invalidStrength(1.5)) { try euler.imageToImageSteps(strength: 1.5) }
        #expect(throws: SchedulerError.noStepsLeft(steps: 25, strength: 0.03)) {
            try euler.imageToImageSteps(strength: 0.03)
        }
    }

    @Test("ᾱ_t in float32 is bit for bit diffusers' for the three beta schedules")
    func alphasCumprodMatchesDiffusers() throws {
        struct Entry: Decodable {
            let betaStart: Double, betaEnd: Double, betasHash: String, alphasCumprodHash: String
        }
        let reference = try SchedulerReference.decode([String: Entry].self, file: "schedule.json")
        for schedule in SchedulerConfiguration.BetaSchedule.allCases {
            let entry = try #require(reference[schedule.rawValue])
            var configuration = SchedulerConfiguration.sd15
            configuration.betaSchedule = schedule
            configuration.betaStart = entry.betaStart
            configuration.betaEnd = entry.betaEnd
            var hash = FNV1a()
            hash.add(configuration.alphasCumprod())
            #expect(hash.hex == entry.alphasCumprodHash, "\(schedule.rawValue)")
            let kind: [SchedulerConfiguration.BetaSchedule: NoiseSchedule.Kind] =
                [.scaledLinear: .scaledLinear, .linear: .linear, .squaredCosine: .cosine]
            var betaHash = FNV1a()
            betaHash.add(NoiseSchedule.float32(kind[schedule]!, betaStart: entry.betaStart, betaEnd: entry.betaEnd).betas)
            #expect(betaHash.hex == entry.betasHash, "\(schedule.rawValue)")
        }
        // The Double schedule of the lessons agrees with it to float32 precision (measured: 9.3e-7 relative).
        let double = NoiseSchedule(.scaledLinear).alphasCumprod
        let float = SchedulerConfiguration.sd15.alphasCumprod()
        #expect(zip(double, float).allSatisfy { abs(Double($1) - $0) / $0 < 2e-6 })
    }

    @Test("CLI names")
    func cliNames() {
        #expect(SchedulerKind.allCases.map(\.rawValue) == ["ddim", "pndm", "euler", "euler-a", "dpmpp-2m-karras", "lcm"])
        #expect(SchedulerKind(rawValue: "euler-a") == .eulerAncestral)
    }
}

@Suite("Scheduler configuration: timestep spacing defaults")
struct SchedulerSpacingDefaultTests {
    @Test("without timestep_spacing each sampler uses diffusers' own default; with it, the given one")
    func spacingDefaults() throws {
        let published = try JSONDecoder().decode(SchedulerConfiguration.self, from: Data("""
            {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
             "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": false,
             "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null, "clip_sample": false}
            """.utf8))
        #expect(!published.timestepSpacingIsExplicit)
        #expect(try SchedulerKind.ddim.makeScheduler(steps: 4, configuration: published).timesteps == [751, 501, 251, 1])
        #expect(try SchedulerKind.euler.makeScheduler(steps: 4, configuration: published).timesteps == [999, 666, 333, 0])
        var leading = published
        leading.timestepSpacing = .leading
        #expect(leading.timestepSpacingIsExplicit)
        #expect(try SchedulerKind.euler.makeScheduler(steps: 4, configuration: leading).timesteps == [751, 501, 251, 1])
    }
}
