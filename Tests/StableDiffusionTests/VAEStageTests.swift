import StableDiffusion
import TensorCore
import Testing

@Suite("VAE: shape walk and FLOP count")
struct VAEStageTests {
    @Test("SD 1.5 at 512x512: 64x64x4 latents, and every level where it should be")
    func sd15ShapesAt512() throws {
        let stages = try AutoencoderKL.stageShapes(configuration: .sd15, height: 512, width: 512)
        let shapes = Dictionary(uniqueKeysWithValues: stages.map { ($0.name, $0.shape) })
        #expect(stages.first! == ("image", [1, 3, 512, 512]))
        #expect(shapes["encoder.conv_in"] == [1, 128, 512, 512])
        #expect(shapes["encoder.down_blocks.0.resnets.1"] == [1, 128, 512, 512])
        #expect(shapes["encoder.down_blocks.0.downsamplers.0"] == [1, 128, 256, 256])
        #expect(shapes["encoder.down_blocks.1.resnets.0"] == [1, 256, 256, 256])
        #expect(shapes["encoder.down_blocks.2.downsamplers.0"] == [1, 512, 64, 64])
        #expect(shapes["encoder.down_blocks.3.downsamplers.0"] == nil)       // the last level keeps its size
        #expect(shapes["encoder.mid_block.attentions.0"] == [1, 512, 64, 64])
        #expect(shapes["encoder.conv_out"] == [1, 8, 64, 64])
        #expect(shapes["quant_conv"] == [1, 8, 64, 64])
        #expect(shapes["mean"] == [1, 4, 64, 64])
        #expect(shapes["latents"] == [1, 4, 64, 64])
        #expect(shapes["decoder.conv_in"] == [1, 512, 64, 64])
        #expect(shapes["decoder.up_blocks.0.resnets.2"] == [1, 512, 64, 64])
        #expect(shapes["decoder.up_blocks.0.upsamplers.0"] == [1, 512, 128, 128])
        #expect(shapes["decoder.up_blocks.2.resnets.0"] == [1, 256, 256, 256])
        #expect(shapes["decoder.up_blocks.3.resnets.2"] == [1, 128, 512, 512])
        #expect(stages.last! == ("decoder.conv_out", [1, 3, 512, 512]))
        // image, conv_in, 8 resnets, 3 downsamplers, 3 mid, conv_out, quant_conv, mean = 19;
        // latents, post_quant_conv, conv_in, 3 mid, 12 resnets, 3 upsamplers, conv_out = 22.
        #expect(stages.count == 19 + 22)
    }

    @Test("FLOPs of SD 1.5 at 512x512 equal PyTorch's FlopCounterMode on diffusers' VAE")
    func sd15Flops() throws {
        // torch.utils.flop_counter.FlopCounterMode around diffusers' AutoencoderKL (SD 1.5
        // config) counts convolutions, matrix products and attention at 2 FLOPs per multiply-add,
        // as we do: encode 1,116,658,466,816, decode 2,514,518,933,504.
        let flops = try AutoencoderKL.flops(configuration: .sd15, height: 512, width: 512)
        #expect(flops.encode == 1_116_658_466_816)
        #expect(flops.decode == 2_514_518_933_504)
        // One stage checked by hand: conv_out, 2 · 3 · 128 · 3 · 3 · 512 · 512.
        let decoder = try AutoencoderKL.stages(configuration: .sd15, height: 512, width: 512).decoder
        #expect(decoder.last!.flops == 2 * 3 * 128 * 9 * 512 * 512)
        // The stages producing 256x256 and 512x512 maps do 69% of the decoding work.
        let large = decoder.filter { $0.shape[2] >= 256 }
        let share = Double(large.reduce(0) { $0 + $1.flops }) / Double(flops.decode)
        #expect(share > 0.68 && share < 0.70)
    }

    @Test("the shape walk agrees with running the tiny VAE stage by stage (32x48 image)")
    func walkMatchesRunningTheModel() throws {
        let vae = try VAEFixture.vae()
        let (encoderStages, decoderStages) = try AutoencoderKL.stages(
            configuration: vae.configuration, height: 32, width: 48, batch: 2)
        var x = Tensor.zeros([2, 3, 32, 48])
        var ran: [(String, [Int])] = [("image", x.shape)]
        x = vae.encoder.convIn(x); ran.append(("encoder.conv_in", x.shape))
        for (i, block) in vae.encoder.downBlocks.enumerated() {
            var h = x
            for (j, resnet) in block.resnets.enumerated() {
                h = resnet(h); ran.append(("encoder.down_blocks.\(i).resnets.\(j)", h.shape))
            }
            x = block(x)        // the whole level, downsampler included
            if block.downsampler != nil { ran.append(("encoder.down_blocks.\(i).downsamplers.0", x.shape)) }
        }
        x = vae.encoder.midBlock(x)
        ran.append(contentsOf: ["resnets.0", "attentions.0", "resnets.1"].map { ("encoder.mid_block.\($0)", x.shape) })
        x = vae.encoder.convOut(x); ran.append(("encoder.conv_out", x.shape))
        x = vae.quantConv(x); ran.append(("quant_conv", x.shape))
        let latents = try vae.encode(Tensor.zeros([2, 3, 32, 48])).mean
        ran.append(("mean", latents.shape))
        #expect(encoderStages.map(\.name) == ran.map(\.0))
        #expect(encoderStages.map(\.shape) == ran.map(\.1))

        let decoded = try vae.decode(latents)
        #expect(decoderStages.first!.shape == latents.shape)
        #expect(decoderStages.last!.shape == decoded.shape)
        #expect(decoded.shape == [2, 3, 32, 48])
        // The tiny model's FLOPs, also from FlopCounterMode (batch 1): encode 17,826,816, decode 37,224,192.
        let flops = try AutoencoderKL.flops(configuration: vae.configuration, height: 32, width: 48)
        #expect(flops.encode == 17_826_816 && flops.decode == 37_224_192)
    }

    @Test("sizes that are not multiples of 8 are rejected")
    func rejectsBadSizes() {
        #expect(throws: VAEError.sizeNotDivisible(height: 500, width: 512, factor: 8)) {
            try AutoencoderKL.stageShapes(configuration: .sd15, height: 500, width: 512)
        }
        #expect(throws: VAEError.sizeNotDivisible(height: 0, width: 0, factor: 8)) {
            try AutoencoderKL.flops(configuration: .sd15, height: 0, width: 0)
        }
    }
}
