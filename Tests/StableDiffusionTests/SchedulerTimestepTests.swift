import StableDiffusion
import Testing

/// Which timesteps and noise levels each sampler visits, against diffusers' `set_timesteps`.
@Suite("Scheduler timesteps and sigmas")
struct SchedulerTimestepTests {
    /// Timesteps must be identical. σ and `initNoiseSigma` may differ in the last bit: they come
    /// from σ_t = √((1 − ᾱ_t)/ᾱ_t), and PyTorch's float32 sqrt is not the correctly rounded IEEE
    /// square root (measured: off by one ulp for 190 of the 1000 training σ_t), so we allow
    /// 2 ulps, a relative 2.4e-7 (Karras σs raise such a difference to the 7th power of its 7th root).
    @Test("timesteps, sigmas and init_noise_sigma for 1 to 1000 steps", arguments: SchedulerKind.allCases)
    func scheduleMatchesDiffusers(kind: SchedulerKind) throws {
        let reference = try SchedulerReference.load(kind)
        for run in reference.txt2img {
            let scheduler = try kind.makeScheduler(steps: run.steps, configuration: .sd15Leading)
            let label = "\(kind.rawValue), \(run.steps) steps"
            #expect(scheduler.timesteps == run.timesteps, "\(label)")
            #expect((scheduler.sigmas == nil) == (run.sigmas == nil), "\(label)")
            if let sigmas = scheduler.sigmas, let expected = run.sigmas {
                #expect(sigmas.count == expected.count, "\(label)")
                let error = zip(sigmas, expected).map { abs($0 - $1) / max($1, .leastNormalMagnitude) }.max() ?? 0
                #expect(error <= 2.4e-7, "sigmas, \(label): relative error \(error)")
            }
            #expect(abs(scheduler.initNoiseSigma - run.initNoiseSigma) <= 2.4e-7 * run.initNoiseSigma, "\(label)")
        }
    }

    /// Every step count from 1 to 1000 and every timestep spacing: per block of 100 step counts, a
    /// hash of the float32 timesteps (which must be identical) and Σ (i + 1)·σ_i (relative 1e-6,
    /// see above for why σ is not hashed). DPM-Solver rounds fractional timesteps; 24 of its
    /// 500,500 timesteps were within 2e-5 of k + 0.5 in diffusers, where a last-bit difference in σ
    /// can round them the other way: those may differ by one (3 of them do: 854, 929 and 996 steps).
    /// Step counts diffusers turns into an unusable schedule must throw instead.
    @Test("every step count and spacing", arguments: SchedulerKind.allCases)
    func everyStepCountMatchesDiffusers(kind: SchedulerKind) throws {
        let reference = try SchedulerReference.load(kind)
        for expected in reference.allStepCounts {
            let spacing = try #require(SchedulerConfiguration.TimestepSpacing(rawValue: expected.spacing))
            let configuration = SchedulerConfiguration.sd15.with(spacing: spacing)
            let ties = Dictionary(grouping: expected.nearTies, by: { $0[0] })
            for block in 0..<10 {
                var timestepHash = FNV1a(), sigmaSum = 0.0
                for steps in (block * 100 + 1)...(block * 100 + 100) {
                    if expected.rejectedSteps.contains(steps) {
                        #expect(throws: SchedulerError.self, "\(kind.rawValue) \(spacing) \(steps) steps") {
                            try kind.makeScheduler(steps: steps, configuration: configuration)
                        }
                        continue
                    }
                    let scheduler = try kind.makeScheduler(steps: steps, configuration: configuration)
                    var timesteps = scheduler.timesteps
                    for tie in ties[steps] ?? [] {
                        #expect(abs(timesteps[tie[1]] - Float(tie[2])) <= 1, "\(steps) steps, index \(tie[1])")
                        timesteps[tie[1]] = -1
                    }
                    timestepHash.add(counted: timesteps)
                    for (i, sigma) in (scheduler.sigmas ?? []).enumerated() { sigmaSum += Double(i + 1) * Double(sigma) }
                }
                let range = "\(kind.rawValue), \(spacing), \(block * 100 + 1)...\(block * 100 + 100) steps"
                #expect(timestepHash.hex == expected.timestepHashes[block], "timesteps, \(range)")
                if let sums = expected.sigmaSums {
                    #expect(abs(sigmaSum - sums[block]) <= 1e-6 * sums[block], "sigmas, \(range)")
                }
            }
        }
    }

    @Test("PNDM repeats its second timestep: N steps are N + 1 model evaluations")
    func pndmRepeatsSecondTimestep() throws {
        let scheduler = try PNDMScheduler(steps: 7)
        #expect(scheduler.timesteps == [853, 711, 711, 569, 427, 285, 143, 1])
        #expect(try DDIMScheduler(steps: 7).timesteps == [853, 711, 569, 427, 285, 143, 1])
        #expect(try PNDMScheduler(steps: 1).timesteps == [1])
    }

    @Test("SD 1.5's leading spacing with 1000 steps reaches t = 1000: DDIM and PNDM refuse, Euler clamps σ")
    func thousandLeadingSteps() throws {
        #expect(throws: SchedulerError.timestepOutOfRange(steps: 1000, timestep: 1000, spacing: "leading")) {
            try DDIMScheduler(steps: 1000)
        }
        #expect(throws: SchedulerError.self) { try PNDMScheduler(steps: 1000) }
        let euler = try EulerDiscreteScheduler(steps: 1000)
        let sigmas = try #require(euler.sigmas)
        #expect(euler.timesteps.first == 1000 && sigmas[0] == sigmas[1])   // t = 1000 and 999 share σ_999
    }

    @Test("Karras noise levels run from σ_max to σ_min, then 0")
    func karrasSigmas() throws {
        let scheduler = try DPMSolverMultistepScheduler(steps: 7)
        #expect(scheduler.timesteps == [999, 868, 687, 427, 146, 18, 0])
        let sigmas = try #require(scheduler.sigmas)
        #expect(sigmas.count == 8 && sigmas.last == 0)
        #expect(abs(sigmas[0] - 14.614647) < 1e-5 && abs(sigmas[6] - 0.02916753) < 1e-7)
    }
}
