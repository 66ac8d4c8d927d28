import TensorCore

// The UNet's training forward and backward: `callAsFunction`'s six steps, keeping what the
// backward needs, and then the same steps in reverse. The skip connections are the one new thing:
// each map the down half keeps for the up half gets its gradient back from there.

extension UNet2DConditionModel {
    /// What the training forward keeps.
    public struct Saved: Sendable {
        let sample: Tensor                          // conv_in's input
        let time: TimestepEmbedding.Saved
        let timeEmbedding: Tensor                   // (N, D_time), input of every ResNet's time path
        let down: [UNetDownBlock.Saved]
        let skipCounts: [Int]                       // skips each down block made
        let mid: UNetMidBlock2DCrossAttn.Saved
        let up: [UNetUpBlock.Saved]
        let last: Tensor                            // input of conv_norm_out
        let normalised: Tensor                      // silu(conv_norm_out(last)): input of conv_out
    }

    /// `callAsFunction(sample, timestep:encoderHiddenStates:)` with one timestep per sample,
    /// keeping what `backward` needs. Its convolutions are computed directly (not by Winograd's
    /// algorithm), so that gradients and trained weights do not depend on how inference is sped up.
    public func trainingForward(_ sample: Tensor, timesteps: [Float], encoderHiddenStates context: Tensor)
        -> (output: Tensor, saved: Saved) {
        Winograd.withoutIt { directTrainingForward(sample, timesteps: timesteps, encoderHiddenStates: context) }
    }

    private func directTrainingForward(_ sample: Tensor, timesteps: [Float], encoderHiddenStates context: Tensor)
        -> (output: Tensor, saved: Saved) {
        precondition(!configuration.centerInputSample, "training a UNet with center_input_sample is not supported")
        precondition(timesteps.count == sample.shape[0], "\(timesteps.count) timesteps for a batch of \(sample.shape[0])")
        let (t, timeSaved) = timeEmbedding.trainingForward(timesteps)
        var x = convIn(sample)
        var skips = [x]
        var downSaved: [UNetDownBlock.Saved] = [], skipCounts: [Int] = []
        for block in downBlocks {
            let (output, blockSkips, saved) = block.trainingForward(x, timeEmbedding: t, context: context)
            (x, skips) = (output, skips + blockSkips)
            downSaved.append(saved)
            skipCounts.append(blockSkips.count)
        }
        let (middle, midSaved) = midBlock.trainingForward(x, timeEmbedding: t, context: context)
        x = middle
        var upSaved: [UNetUpBlock.Saved] = []
        for block in upBlocks {
            let mine = Array(skips.suffix(block.resnetCount))
            skips.removeLast(block.resnetCount)
            let upsampleSize = skips.last.map { (height: $0.shape[2], width: $0.shape[3]) }
            let (output, saved) = block.trainingForward(x, skips: mine, timeEmbedding: t, context: context,
                                                         upsampleSize: upsampleSize)
            x = output
            upSaved.append(saved)
        }
        let normalised = convNormOut(x, silu: true)
        return (convOut(normalised), Saved(sample: sample, time: timeSaved, timeEmbedding: t, down: downSaved,
                                           skipCounts: skipCounts, mid: midSaved, up: upSaved, last: x, normalised: normalised))
    }

    /// The backward of `trainingForward`: fills `gradients` for every weight of the UNet and
    /// returns the gradients of the sample and of the text context (which a jointly trained text
    /// encoder continues from).
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) -> (dSample: Tensor, dContext: Tensor) {
        var d = convOut.backward(dOut, input: saved.normalised, gradients: &gradients)
        d = convNormOut.backward(d, input: saved.last, silu: true, gradients: &gradients)
        var dTime: Tensor?, dContext: Tensor?
        // Up, in reverse: the last up block took the first skips, so going back through the up
        // blocks collects the skips' gradients in the order the maps were made (skip 0 is
        // conv_in's output).
        var dSkips: [Tensor] = []
        for (block, s) in zip(upBlocks, saved.up).reversed() {
            let (dx, blockSkips, dt, dc) = block.backward(d, saved: s, gradients: &gradients)
            (d, dTime, dContext) = (dx, accumulated(dTime, dt), accumulated(dContext, dc))
            dSkips += blockSkips
        }
        let mid = midBlock.backward(d, saved: saved.mid, gradients: &gradients)
        (d, dTime, dContext) = (mid.dx, accumulated(dTime, mid.dTimeEmbedding), accumulated(dContext, mid.dContext))
        // Down, in reverse, each block with the gradients of the skips it made.
        var end = dSkips.count
        for (i, block) in downBlocks.enumerated().reversed() {
            let mine = Array(dSkips[(end - saved.skipCounts[i])..<end])
            end -= saved.skipCounts[i]
            let (dx, dt, dc) = block.backward(d, dSkips: mine, saved: saved.down[i], gradients: &gradients)
            (d, dTime, dContext) = (dx, accumulated(dTime, dt), accumulated(dContext, dc))
        }
        d += dSkips[0]                                          // conv_in's output was skip 0
        let dSample = convIn.backward(d, input: saved.sample, gradients: &gradients)
        timeEmbedding.backward(dTime!, saved: saved.time, gradients: &gradients)
        return (dSample, dContext!)
    }
}
