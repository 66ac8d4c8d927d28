"""Runs the shapes of `sd-bench all` and `sd-bench train` through PyTorch and prints our time over theirs.

Usage, from the repository root, with the reference virtual environment of Tools/reference:

    swift build -c release
    .venv/bin/python Tools/benchmark/compare_pytorch.py --size 512 --batch 2
    .venv/bin/python Tools/benchmark/compare_pytorch.py --parts train --train-batch 32

Both sides use Stable Diffusion 1.5's real architecture with random weights (the weights do not
change the amount of arithmetic), float32, all cores. Each line also shows our rate as a fraction of
the machine's sgemm rate (PyTorch's 2048x2048 float32 product) measured right before and after, in
two ways: the best of 10 short products ("burst", which a core's boost clock favours), and the
median over 5 seconds of products back to back ("sustained", the conditions a model runs in).
The training step (`train`) is one step of forward, backward and AdamW of the small SD-shaped
UNet that `sd-bench train` builds; its JSON names the configuration, so PyTorch builds the same one.
Not part of CI: it needs PyTorch and takes a few minutes at 512x512.
"""

import argparse
import json
import subprocess
import time

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

# SD 1.5's published component configurations (only the numbers that differ from the defaults).
UNET = dict(sample_size=64, cross_attention_dim=768, attention_head_dim=8,
            block_out_channels=(320, 640, 1280, 1280))
VAE = dict(block_out_channels=(128, 256, 512, 512), latent_channels=4, layers_per_block=2,
           down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4)
CLIP = CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                      num_hidden_layers=12, max_position_embeddings=77, vocab_size=49408,
                      hidden_act="quick_gelu")


def timed(fn, repeats=1):
    """Best wall-clock time of `fn` over `repeats` runs, after one warm-up run."""
    with torch.inference_mode():
        fn()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
    return best


def sgemm_rate(n=2048, repeats=10):
    """PyTorch's float32 matrix product (its BLAS) on n x n matrices, in GFLOP/s (best run)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / timed(lambda: a @ b, repeats) / 1e9


def sgemm_sustained_rate(n=2048, seconds=5.0):
    """The median rate of PyTorch's n x n float32 product run back to back for `seconds`, in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    times = []
    with torch.inference_mode():
        a @ b
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
    times.sort()
    return 2 * n ** 3 / times[len(times) // 2] / 1e9


def pytorch_part(part, size, batch):
    """Seconds of one part, built with SD 1.5's shapes and random weights."""
    latent = size // 8
    if part == "text-encoder":
        text = CLIPTextModel(CLIP).eval()
        ids = torch.full((batch, 77), 49407, dtype=torch.long)
        return timed(lambda: text(ids))
    if part == "unet":
        unet = UNet2DConditionModel(**UNET).eval()
        sample = torch.randn(batch, 4, latent, latent)
        context = torch.randn(batch, 77, 768)
        return timed(lambda: unet(sample, 500, encoder_hidden_states=context))
    vae = AutoencoderKL(**VAE).eval()
    latents = torch.randn(1, 4, latent, latent)
    return timed(lambda: vae.decode(latents))


def pytorch_train(ours):
    """Seconds of one training step of the UNet `sd-bench train` described in its JSON: x_t from
    per-sample timesteps, noise-prediction MSE, backward, gradient clipping to 1, AdamW (best of 3)."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(ours["unet_config"]).train()
    optimiser = torch.optim.AdamW(unet.parameters(), lr=ours["learning_rate"])
    batch, latent = ours["batch"], ours["size"] // 8
    latents = torch.randn(batch, 4, latent, latent)
    noise = torch.randn(batch, 4, latent, latent)
    context = torch.randn(batch, ours["tokens"], ours["unet_config"]["cross_attention_dim"])
    timesteps = torch.tensor([(n * 997 + 13) % 1000 for n in range(batch)])
    alphas_cumprod = torch.cumprod(1 - torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2, 0)
    a = alphas_cumprod[timesteps].view(-1, 1, 1, 1)

    def step():
        noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
        prediction = unet(noisy, timesteps, encoder_hidden_states=context).sample
        loss = torch.nn.functional.mse_loss(prediction, noise)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimiser.step()

    step()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def swift_part(sd_bench, part, size, batch):
    """`sd-bench <part> --json`: the part's seconds and GFLOP, and the whole JSON of the run."""
    output = subprocess.run([sd_bench, part, "--size", str(size), "--batch", str(batch), "--json"],
                            check=True, capture_output=True, text=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return result[part], result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=64, help="pixels of the training benchmark's pictures")
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--parts", default="text-encoder,unet,vae-decode,train")
    parser.add_argument("--sd-bench", default=".build/release/sd-bench")
    args = parser.parse_args()

    # A shared machine's speed drifts over minutes, so each part runs on both sides back to back,
    # and the machine's sgemm rate (PyTorch's BLAS) is measured next to it as the yardstick.
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; size {args.size}, batch {args.batch}")
    print(f"{'part':14} {'Swift s':>8} {'PyTorch s':>10} {'Swift/PyTorch':>14} {'Swift GFLOP/s':>14} "
          f"{'sgemm burst':>12} {'of burst':>9} {'sgemm sustained':>16} {'of sustained':>13}")
    for part in args.parts.split(","):
        before, before_sustained = sgemm_rate(), sgemm_sustained_rate()
        if part == "train":
            # Two rounds, alternating sides, best of each: a step takes well under a second, so one
            # side could otherwise catch all of a slow spell of the machine.
            rounds = []
            for _ in range(2):
                ours, run = swift_part(args.sd_bench, part, args.train_size, args.train_batch)
                rounds.append((ours, pytorch_train(run)))
            ours = min((ours for ours, _ in rounds), key=lambda result: result["seconds"])
            theirs = min(theirs for _, theirs in rounds)
            print(f"(train: {run['parameters'] / 1e6:.2f} M parameters, batch {run['batch']}, "
                  f"our peak memory {run.get('peak_memory_bytes', 0) / 1e6:.0f} MB)")
        else:
            ours, _ = swift_part(args.sd_bench, part, args.size, args.batch)
            theirs = pytorch_part(part, args.size, args.batch)
        burst = max(before, sgemm_rate())   # the better of before and after
        sustained = (before_sustained + sgemm_sustained_rate()) / 2
        print(f"{part:14} {ours['seconds']:8.2f} {theirs:10.2f} {ours['seconds'] / theirs:14.2f} "
              f"{ours['gflops']:14.1f} {burst:12.1f} {ours['gflops'] / burst:9.2f} "
              f"{sustained:16.1f} {ours['gflops'] / sustained:13.2f}")


if __name__ == "__main__":
    main()
