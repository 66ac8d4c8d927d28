import Foundation
import LessonKit
import StableDiffusion
import Testing
import TensorCore

/// Lesson 1's numbers, checked against the schedule formulas worked out independently here.
@Suite("Lesson 1: the numbers forward-noising computes")
struct ForwardNoisingNumbersTests {
    /// SD's scaled-linear β_t = (√0.00085 + t/999 · (√0.012 − √0.00085))², from the formula.
    static func scaledLinearBeta(_ t: Int) -> Double {
        let a = 0.00085.squareRoot(), b = 0.012.squareRoot()
        let root = a + Double(t) / 999 * (b - a)
        return root * root
    }

    /// The continuous cosine curve f(t) = cos²((t/1000 + 0.008)/1.008 · π/2) of Nichol & Dhariwal.
    static func cosineCurve(_ t: Double) -> Double {
        let angle = (t / 1000 + 0.008) / 1.008 * Double.pi / 2
        return cos(angle) * cos(angle)
    }

    @Test("a schedule row holds β_t, ᾱ_t = Π(1 − β_s), √ᾱ, √(1 − ᾱ) and SNR = ᾱ/(1 − ᾱ)", arguments: [0, 1, 250, 500, 999])
    func scheduleRow(t: Int) {
        let row = NoiseSchedule(.scaledLinear).row(at: t)
        let alphaBar = (0...t).reduce(1.0) { $0 * (1 - Self.scaledLinearBeta($1)) }
        #expect(row.timestep == t)
        #expect(abs(row.beta - Self.scaledLinearBeta(t)) < 1e-15)
        #expect(abs(row.alphaBar - alphaBar) < 1e-12)
        #expect(abs(row.signalScale - alphaBar.squareRoot()) < 1e-12)
        #expect(abs(row.noiseScale - (1 - alphaBar).squareRoot()) < 1e-12)
        #expect(abs(row.signalToNoise / (alphaBar / (1 - alphaBar)) - 1) < 1e-9)
        // Signal and noise variances always add up to the variance of unit-variance data.
        let variances = row.signalScale * row.signalScale + row.noiseScale * row.noiseScale
        #expect(abs(variances - 1) < 1e-12)
        #expect(abs(row.picturePercent - 100 * alphaBar) < 1e-10)
    }

    @Test("a picture of variance v is ᾱv/(ᾱv + 1 − ᾱ) of x_t's variance: the built-in one about a fifth at t = 300")
    func pictureShareOfVariance() {
        let picture = ExamplePictures.hills(), schedule = NoiseSchedule(.scaledLinear)
        let v = Double(picture.standardDeviation * picture.standardDeviation)
        #expect(abs(v.squareRoot() - 0.43) < 0.01)
        let row = schedule.row(at: 300)
        #expect(abs(row.pictureShare(ofVariance: 1) - row.alphaBar) < 1e-12)          // unit variance: ᾱ itself
        let share = row.pictureShare(ofVariance: v)
        #expect(share > 0.19 && share < 0.22, "share \(share)")                        // not ᾱ = 0.591
        // And x_t's variance is ᾱ·v + 1 − ᾱ, not 1: measured on the lesson's own noise at t = 250.
        let process = ForwardProcess(clean: picture, seed: 42, schedule: schedule)
        let measured = Double(process.noised(at: 250).standardDeviation)
        let alphaBar = schedule.row(at: 250).alphaBar
        #expect(abs(measured * measured - (alphaBar * v + 1 - alphaBar)) < 0.01, "variance \(measured * measured)")
    }

    @Test("cosine: ᾱ_t telescopes to f(t + 1)/f(0), 0.492 at t = 500")
    func cosineAlphaBar() {
        // β_t = 1 − f(t+1)/f(t) (never capped below t = 999), so Π_{s≤t}(1 − β_s) = f(t + 1)/f(0).
        let schedule = NoiseSchedule(.cosine)
        for t in [0, 100, 500, 900] {
            #expect(abs(schedule.row(at: t).alphaBar - Self.cosineCurve(Double(t + 1)) / Self.cosineCurve(0)) < 1e-12)
        }
        #expect(String(format: "%.3f", schedule.row(at: 500).alphaBar) == "0.492")
    }

    @Test("linear (DDPM): ᾱ_999 is the product of 1 − β for β linear from 0.0001 to 0.02")
    func linearAlphaBar() {
        func beta(_ t: Int) -> Double { 0.0001 + Double(t) / 999 * (0.02 - 0.0001) }
        let product = (0...999).reduce(1.0) { $0 * (1 - beta($1)) }
        #expect(abs(NoiseSchedule(.linear).row(at: 999).alphaBar - product) < 1e-15)
        // It has erased the picture: about 4·10⁻⁵ of its variance is left.
        #expect(product < 1e-4)
    }

    @Test("the equal-variance timestep is the first t with ᾱ_t < ½, i.e. SNR < 1", arguments: NoiseSchedule.Kind.allCases)
    func equalVariance(kind: NoiseSchedule.Kind) {
        let schedule = NoiseSchedule(kind)
        let t = schedule.equalVarianceTimestep
        #expect(schedule.row(at: t).signalToNoise < 1)
        #expect(schedule.row(at: t - 1).signalToNoise >= 1)
    }

    @Test("cosine: the equal-variance timestep solves f(t + 1)/f(0) = ½")
    func cosineEqualVariance() {
        // cos²(θ) = f(0)/2  →  θ = acos(√(f(0)/2));  t + 1 = 1000 · (θ · 2/π · 1.008 − 0.008).
        let theta = acos((Self.cosineCurve(0) / 2).squareRoot())
        let crossing = 1000 * (theta * 2 / Double.pi * 1.008 - 0.008) - 1       // real-valued t
        #expect(NoiseSchedule(.cosine).equalVarianceTimestep == Int(crossing.rounded(.down)) + 1)   // first whole t > crossing
    }

    @Test("the SNR curve is ᾱ/(1 − ᾱ) at every timestep and falls monotonically")
    func snrCurve() {
        let schedule = NoiseSchedule(.scaledLinear)
        let curve = schedule.signalToNoiseCurve
        #expect(curve.count == 1000)
        for t in [0, 10, 400, 999] {
            let a = schedule.alphasCumprod[t]
            #expect(abs(curve[t] - a / (1 - a)) <= 1e-12 * curve[t])
        }
        #expect(zip(curve, curve.dropFirst()).allSatisfy { $0 > $1 })
    }

    @Test("x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε, element by element")
    func noisedPicture() {
        let x0 = Tensor(shape: [1, 3, 2, 2], scalars: (0..<12).map { Float($0) / 6 - 1 })
        let process = ForwardProcess(clean: x0, seed: 3, schedule: NoiseSchedule(.linear))
        for t in [0, 300, 999] {
            let a = NoiseSchedule(.linear).alphasCumprod[t]
            let xt = process.noised(at: t)
            for i in 0..<12 {
                let expected = a.squareRoot() * Double(x0.scalars[i]) + (1 - a).squareRoot() * Double(process.noise.scalars[i])
                #expect(abs(Double(xt.scalars[i]) - expected) < 1e-5)
            }
        }
        // The noise is torch.randn's for the seed: the same generator gives the same numbers.
        var generator = TorchGenerator(seed: 3)
        #expect(process.noise == generator.randn([1, 3, 2, 2]))
    }

    @Test("at t = 999 of SD's schedule the pixels have almost exactly ε's statistics")
    func noisedStatistics() {
        let x0 = ExamplePictures.hills(width: 64, height: 64)
        let process = ForwardProcess(clean: x0, seed: 42, schedule: NoiseSchedule(.scaledLinear))
        let last = TensorSummary(process.noised(at: 999)), noise = TensorSummary(process.noise)
        let clean = TensorSummary(x0)
        // mean(x_t) = √ᾱ mean(x₀) + √(1 − ᾱ) mean(ε), exactly (the mean is linear).
        let a = NoiseSchedule(.scaledLinear).alphasCumprod[999]
        let mean = a.squareRoot() * Double(clean.mean) + (1 - a).squareRoot() * Double(noise.mean)
        #expect(abs(Double(last.mean) - mean) < 1e-5)
        #expect(abs(last.standardDeviation - noise.standardDeviation) < 0.05)
    }

    @Test("animation timesteps rise evenly from 0 to 999, rounded down")
    func animationTimesteps() {
        #expect(ForwardProcess.animationTimesteps(frames: 2) == [0, 999])
        #expect(ForwardProcess.animationTimesteps(frames: 4) == [0, 333, 666, 999])   // 999/3 = 333
        let sixty = ForwardProcess.animationTimesteps(frames: 60)
        #expect(sixty.count == 60 && sixty.first == 0 && sixty.last == 999)
        #expect(sixty[1] == 16)                                                         // ⌊999/59⌋
        #expect(zip(sixty, sixty.dropFirst()).allSatisfy { $0 < $1 })
    }

    @Test("histogram: counts per bin, divided by n · bin width; values outside the range are left out")
    func histogramBins() {
        // 8 bins of width 1 over [−4, 4]; n = 7 values, so one value in a bin is a density of 1/7.
        let values: [Float] = [-4.05, -3.95, 0, 0.01, 3.99, 4, 5]
        let histogram = Histogram(values, bins: 8, range: -4...4)
        #expect(histogram.centres == [-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5])
        let expected: [Double] = [1, 0, 0, 0, 2, 0, 0, 1].map { $0 / 7 }
        #expect(histogram.densities == expected)
    }

    @Test("histogram of ε integrates to the share of values in [−4, 4] and follows φ")
    func histogramOfNoise() {
        var generator = TorchGenerator(seed: 1)
        let noise = generator.randn([100_000])
        let histogram = Histogram(noise.scalars)
        let width = 8.0 / 80
        let inside = Double(noise.scalars.filter { $0 >= -4 && $0 < 4 }.count) / 100_000
        #expect(abs(histogram.densities.reduce(0, +) * width - inside) < 1e-12)
        // The bin at the centre holds about φ(0.05) of density; sampling error is about 1%.
        #expect(abs(histogram.densities[40] / Histogram.standardNormalDensity(0.05) - 1) < 0.05)
    }

    @Test("φ(x) = e^(−x²/2)/√(2π): 0.398942 at 0, 0.241971 at ±1")
    func normalDensity() {
        #expect(abs(Histogram.standardNormalDensity(0) - 0.3989422804) < 1e-9)
        #expect(abs(Histogram.standardNormalDensity(1) - 0.2419707245) < 1e-9)
        #expect(Histogram.standardNormalDensity(-1) == Histogram.standardNormalDensity(1))
    }
}
