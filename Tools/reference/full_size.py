"""The full-size SD 1.5 with random weights: both layouts plus a few reference outputs.

The files are large (4.3 GB in fp32) and are written outside the repository. They let the Swift
port test loading a real-sized checkpoint, and its speed, without downloading the trained weights.
Random weights produce noise-like pictures; what matters is that the Swift code reproduces them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

import checkpoint_layouts as layouts
import reference_data as ref
import sd_models


def make_full(out: Path, fp16: bool, image_size: int, seed: int, verify, print_sizes) -> None:
    size = sd_models.FULL
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    print(f"\n== full-size model -> {out}")

    with _timed(timings, "build_models_s"):
        models = sd_models.build_models(size, seed)
    for name, model in models.items():
        print(f"  {name}: {sum(p.numel() for p in model.parameters()):,} parameters")

    single = out / "sd15-random.safetensors"
    single_fp16 = out / "sd15-random-fp16.safetensors" if fp16 else None
    with _timed(timings, "write_files_s"):
        layouts.write_single_file(models, single)
        if single_fp16:
            layouts.write_single_file(models, single_fp16, torch.float16)
        layouts.write_diffusers_folder(models, out / "diffusers", fp16_variant=fp16)
        (out / "sd15-random.yaml").write_text(sd_models.original_config_yaml(size))
    print(f"  wrote the single file(s) and the diffusers folder in {timings['write_files_s']:.0f} s")

    with _timed(timings, "verify_s"):
        verify(models, size, out / "diffusers", single, single_fp16)

    reference_outputs(models, out / "reference", image_size, timings)
    print_sizes(out)


def reference_outputs(models: dict, folder: Path, image_size: int, timings: dict) -> None:
    """Text encoder states, one UNet prediction, and 2-step DDIM and Euler-ancestral generations."""
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = CLIPTokenizer.from_pretrained(str(folder.parent / "diffusers" / "tokenizer"))
    f = ref.TensorFile("full_reference.safetensors")
    latent = image_size // 8

    with _timed(timings, "text_encoder_s"):
        context = ref.encode_prompts(models["text_encoder"], tokenizer, ["", ref.ASTRONAUT])
    f.add("text_encoder.last_hidden_state", context, f'["", "{ref.ASTRONAUT}"]')

    sample = torch.randn((2, 4, latent, latent), generator=ref.generator(5))
    with _timed(timings, f"unet_batch2_{latent}x{latent}_s"):
        out = models["unet"](sample, ref.UNET_TIMESTEP, encoder_hidden_states=context).sample
    f.add("unet.sample", sample, f"torch.randn((2, 4, {latent}, {latent})) seed 5")
    f.add("unet.out", out, f"noise prediction at timestep {ref.UNET_TIMESTEP} with the context above")
    print(f"  UNet, batch 2 at {latent}x{latent} latents: {timings[f'unet_batch2_{latent}x{latent}_s']:.1f} s")

    runs = {}
    components = ref.pipeline_components(models, tokenizer)
    for name in ("ddim", "euler_ancestral"):
        pipe = StableDiffusionPipeline(scheduler=ref.make_scheduler(name), **components)
        pipe.set_progress_bar_config(disable=True)
        recorder = ref.UNetRecorder(models["unet"])
        with _timed(timings, f"txt2img_{name}_s"):
            image, latents_after = ref.run_and_record(
                pipe, recorder, prompt=ref.ASTRONAUT, negative_prompt=ref.NEGATIVE, height=image_size,
                width=image_size, num_inference_steps=2, guidance_scale=ref.GUIDANCE,
                generator=ref.generator(ref.PIPELINE_SEED))
        recorder.remove()
        timesteps = ref.add_step_tensors(f, f"txt2img.{name}", recorder, latents_after)
        f.add(f"txt2img.{name}.image", image, f"pipeline output (output_type='np'), NHWC (1, {image_size}, {image_size}, 3)")
        runs[name] = {"timesteps": timesteps, "seconds": round(timings[f"txt2img_{name}_s"], 1)}
        print(f"  txt2img {name}, 2 steps at {image_size}x{image_size}: {timings[f'txt2img_{name}_s']:.0f} s")

    f.write(folder)
    info = {
        "description": "Reference outputs of the full-size random-weight SD 1.5 (weights seeds 1, 2, 3 as "
                       "for the tiny model). Same prompts, seeds and guidance as the tiny fixtures.",
        "image_size": image_size, "steps": 2, "guidance_scale": ref.GUIDANCE, "seed": ref.PIPELINE_SEED,
        "prompt": ref.ASTRONAUT, "negative_prompt": ref.NEGATIVE, "runs": runs,
        "tensors": {k: list(v.shape) for k, v in f.tensors.items()},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "torch_threads": torch.get_num_threads(),
    }
    (folder / "full_reference.json").write_text(json.dumps(info, indent=1) + "\n")


class _timed:
    """with _timed(timings, "name"): ... records the seconds taken."""

    def __init__(self, timings: dict, name: str):
        self.timings, self.name = timings, name

    def __enter__(self):
        self.start = time.time()

    def __exit__(self, *exc):
        self.timings[self.name] = time.time() - self.start
