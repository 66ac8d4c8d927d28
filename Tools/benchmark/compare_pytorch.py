"""Runs the shapes of `sd-bench all` through PyTorch and prints our time over theirs.

Usage, from the repository root, with the reference virtual environment of Tools/reference:

    swift build -c release
    .venv/bin/python Tools/benchmark/compare_pytorch.py --size 512 --batch 2

Both sides use Stable Diffusion 1.5's real architecture with random weights (the weights do not
change the amount of arithmetic), float32, all cores. Not part of CI: it needs PyTorch and takes
about a minute per part at 512x512.
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


def pytorch_times(size, batch):
    latent = size // 8
    text = CLIPTextModel(CLIP).eval()
    ids = torch.full((batch, 77), 49407, dtype=torch.long)
    unet = UNet2DConditionModel(**UNET).eval()
    sample = torch.randn(batch, 4, latent, latent)
    context = torch.randn(batch, 77, 768)
    vae = AutoencoderKL(**VAE).eval()
    latents = torch.randn(1, 4, latent, latent)
    return {
        "text-encoder": timed(lambda: text(ids)),
        "unet": timed(lambda: unet(sample, 500, encoder_hidden_states=context)),
        "vae-decode": timed(lambda: vae.decode(latents)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--sd-bench", default=".build/release/sd-bench")
    args = parser.parse_args()

    output = subprocess.run([args.sd_bench, "all", "--size", str(args.size), "--batch", str(args.batch), "--json"],
                            check=True, capture_output=True, text=True).stdout
    ours = json.loads(output.strip().splitlines()[-1])
    theirs = pytorch_times(args.size, args.batch)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; size {args.size}, batch {args.batch}")
    print(f"{'part':14} {'Swift s':>9} {'PyTorch s':>10} {'Swift/PyTorch':>14}")
    for part, seconds in theirs.items():
        mine = ours[part]["seconds"]
        print(f"{part:14} {mine:9.2f} {seconds:10.2f} {mine / seconds:14.2f}")


if __name__ == "__main__":
    main()
