import StableDiffusion
import Testing

@Suite("UNet FLOP count")
struct UNetFlopCountTests {
    @Test("one convolution, counted by hand")
    func convolutionByHand() {
        // SD 1.5's conv_in on a CFG batch of 64x64 latents: 2 images × 320 output channels × 4096
        // pixels, each a dot product of 4 channels × 3 × 3 = 36 multiply-adds:
        // 2 · 320 · 4096 · 36 = 94,371,840 multiply-adds = 188,743,680 FLOP.
        #expect(FlopCount.conv2d(batch: 2, inChannels: 4, outChannels: 320, kernelSize: 3,
                                 outHeight: 64, outWidth: 64) == 188_743_680)
    }

    @Test("SD 1.5's total agrees with PyTorch's FlopCounterMode on diffusers' UNet",
          arguments: [(64, 64, 2, 1_606_546_882_560.0), (64, 64, 1, 803_273_441_280), (96, 64, 1, 1_295_277_260_800)])
    func sd15(case: (Int, Int, Int, Double)) {
        // Reference: torch.utils.flop_counter.FlopCounterMode around diffusers 0.42.1's
        // UNet2DConditionModel with SD 1.5's config, run on the "meta" device (shapes only),
        // context (batch, 77, 768). It counts convolutions, linear layers and attention's batched
        // products, as FlopCount does, so the two must agree exactly.
        let (height, width, batch, expected) = `case`
        let flops = UNet2DConditionModel.flopCount(configuration: .sd15, latentHeight: height, latentWidth: width,
                                                   batch: batch)
        print("SD 1.5 UNet \(height)x\(width) latents, batch \(batch): \(flops / 1e9) GFLOP")
        #expect(flops == expected)
    }

    @Test("the tiny UNet's total agrees with FlopCounterMode, also for a size that is not a multiple of 8")
    func tiny() throws {
        let c = try UNetFixtures.configuration()
        #expect(UNet2DConditionModel.flopCount(configuration: c, latentHeight: 8, latentWidth: 8, batch: 2) == 28_313_856)
        #expect(UNet2DConditionModel.flopCount(configuration: c, latentHeight: 12, latentWidth: 10, batch: 2) == 57_917_952)
    }
}
