#!/usr/bin/env python3
"""Build Stable Diffusion 1.x with random weights and write the reference data the Swift tests use.

What it does (details in the modules it imports):

  1. sd_models.py          builds SD 1.5's UNet, VAE and CLIP text encoder from configs, at full
                           size and at a tiny size with the same structure, with seeded random
                           weights;
  2. checkpoint_layouts.py saves them in the diffusers folder layout and in the original
                           single-file layout (CompVis names), then loads both back with diffusers'
                           own loaders to prove the name mapping right;
  3. extract_bpe.py        writes the CLIP tokenizer's merges (the Swift resource) and the
                           tokenizer files of the diffusers layout;
  4. reference_data.py     runs the tiny model and records inputs/outputs: token ids, text
                           encoder states, a UNet prediction, VAE encode/decode, torch.randn
                           noise, scheduler tables and short full pipeline runs.

Usage (from the repository root, in a venv with torch, diffusers, transformers, safetensors and
open_clip_torch; nothing is downloaded):

    python Tools/reference/make_reference.py                   # tiny fixtures + BPE resource
    python Tools/reference/make_reference.py --full OUTDIR     # also the full-size model, outside the repo
    python Tools/reference/make_reference.py --full OUTDIR --fp16 --skip-tiny
"""

from __future__ import annotations

import os

# Everything is built locally: never try to reach the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import checkpoint_layouts as layouts  # noqa: E402
import extract_bpe  # noqa: E402
import reference_data as ref  # noqa: E402
import sd_models  # noqa: E402
import tiny_pipeline  # noqa: E402
from tiny_pipeline import print_sizes, quiet_libraries, shown  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "Tests" / "StableDiffusionTests" / "Fixtures"
WEIGHTS_SEED = 0  # the UNet, VAE and text encoder use seeds 1, 2 and 3
# The committed tiny diffusers folder stores float16 weights (as the old "fp16" revisions of the SD
# repositories did, under the usual file names). The weights are float16-exact, so nothing is lost,
# and it keeps the fixtures near 6 MB; the single file is there in both float32 and float16.
TINY_DIFFUSERS_DTYPE = torch.float16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="where the tiny fixtures go")
    parser.add_argument("--full", type=Path, metavar="OUTDIR", help="also write the full-size model here")
    parser.add_argument("--fp16", action="store_true", help="full size: also write float16 weights")
    parser.add_argument("--full-image-size", type=int, default=256, help="full size: pixels of the test generations")
    parser.add_argument("--skip-tiny", action="store_true", help="only do --full")
    args = parser.parse_args()

    quiet_libraries()
    torch.set_grad_enabled(False)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()))

    if not args.skip_tiny:
        make_tiny(args.fixtures)
    if args.full:
        make_full(args.full, fp16=args.fp16, image_size=args.full_image_size)


def versions() -> dict:
    return tiny_pipeline.versions(also=("open_clip_torch", "numpy"))


# MARK: - The tiny model and the fixtures


def make_tiny(fixtures: Path) -> None:
    size = sd_models.TINY
    print(f"\n== tiny model -> {shown(fixtures)}")
    models = sd_models.build_models(size, WEIGHTS_SEED)
    for name, model in models.items():
        print(f"  {name}: {sum(p.numel() for p in model.parameters()):,} parameters")

    extract_bpe.write_swift_resource()
    extract_bpe.check_vocab_matches_open_clip()
    print(f"  wrote {shown(extract_bpe.RESOURCE_FILE)} and {shown(extract_bpe.NOTICE_FILE)}")

    tiny_dir = fixtures / "tiny"
    reference_dir = fixtures / "reference"
    for folder in (tiny_dir, reference_dir):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

    with tempfile.TemporaryDirectory() as scratch:
        # A complete diffusers folder (with the 2 MB of tokenizer vocabulary) to verify against;
        # the committed copy leaves the vocabulary out.
        complete = Path(scratch) / "diffusers"
        layouts.write_diffusers_folder(models, complete)
        write_model_files(models, size, tiny_dir)
        verify_layouts(models, size, complete, tiny_dir / "tiny-sd.safetensors", tiny_dir / "tiny-sd-fp16.safetensors")
        verify_committed_folder(models, tiny_dir / "diffusers", complete)

        from transformers import CLIPTokenizer

        tokenizer = CLIPTokenizer.from_pretrained(str(complete / "tokenizer"))
        tensor_files = write_reference(models, tokenizer, reference_dir)

    import readme

    readme.write_fixture_readmes(fixtures, size, tensor_files, versions())
    print_sizes(fixtures)


def write_model_files(models: dict, size: sd_models.ModelSize, tiny_dir: Path) -> None:
    layouts.write_single_file(models, tiny_dir / "tiny-sd.safetensors")
    layouts.write_single_file(models, tiny_dir / "tiny-sd-fp16.safetensors", torch.float16)
    layouts.write_diffusers_folder(models, tiny_dir / "diffusers", dtype=TINY_DIFFUSERS_DTYPE,
                                   with_tokenizer_vocab=False)
    (tiny_dir / "tiny-sd.yaml").write_text(sd_models.original_config_yaml(size))
    config = {
        "description": "Every number of the tiny model. The diffusers/ folder holds the same configs; "
                       "tiny-sd.safetensors cannot say its GroupNorm group counts, so tests must take them from here.",
        "unet": sd_models.unet_config(size),
        "vae": sd_models.vae_config(size),
        "text_encoder": sd_models.text_encoder_config(size),
        "scheduler": sd_models.SD15_SCHEDULER_CONFIG,
        "weights_seed": {"unet": WEIGHTS_SEED + 1, "vae": WEIGHTS_SEED + 2, "text_encoder": WEIGHTS_SEED + 3},
    }
    (tiny_dir / "tiny_config.json").write_text(json.dumps(config, indent=2) + "\n")


def verify_layouts(models: dict, size: sd_models.ModelSize, diffusers_folder: Path,
                   single_file: Path, single_file_fp16: Path | None) -> None:
    """Load every file back with diffusers' loaders; every tensor must equal the model's."""
    layouts.check_mapping_is_one_to_one(models)
    n = layouts.verify_diffusers_folder(diffusers_folder, models)
    print(f"  verified: StableDiffusionPipeline.from_pretrained(diffusers folder) -> {n} tensors identical")
    if (diffusers_folder / "unet" / "diffusion_pytorch_model.fp16.safetensors").exists():
        n = layouts.verify_diffusers_folder(diffusers_folder, models, variant="fp16")
        print(f"  verified: from_pretrained(diffusers folder, variant='fp16') -> {n} tensors identical")
    n = layouts.verify_with_single_file_loader(single_file, diffusers_folder, models)
    print(f"  verified: StableDiffusionPipeline.from_single_file({single_file.name}, config=diffusers folder)"
          f" -> {n} tensors identical")
    if single_file_fp16 is not None:
        n = layouts.verify_with_single_file_loader(single_file_fp16, diffusers_folder, models)
        print(f"  verified: from_single_file({single_file_fp16.name}) -> {n} tensors identical "
              "(the weights are float16-exact)")
    groups = {"unet": size.unet_norm_groups, "vae": size.vae_norm_groups}
    n = layouts.verify_with_conversion_functions(single_file, sd_models.original_config_yaml(size), models, groups)
    print(f"  verified: diffusers.loaders.single_file_utils.convert_ldm_*_checkpoint with the config from our "
          f"original-format yaml -> {n} tensors identical")


def verify_committed_folder(models: dict, folder: Path, complete: Path) -> None:
    """The committed diffusers folder (no tokenizer vocabulary) loads, given a tokenizer."""
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(complete / "tokenizer"))
    pipe = StableDiffusionPipeline.from_pretrained(str(folder), tokenizer=tokenizer, local_files_only=True)
    for name in ("unet", "vae", "text_encoder"):
        layouts._compare_state(models[name].state_dict(), getattr(pipe, name).state_dict(), name)
    print("  verified: the committed tiny/diffusers folder loads (tokenizer passed in) with identical tensors")


def write_reference(models: dict, tokenizer, folder: Path) -> dict:
    start = time.time()
    files: dict[str, ref.TensorFile] = {}  # tensors, grouped by the .safetensors file they go to
    ref.tokens_section(folder, tokenizer)
    ref.text_encoder_section(files, models["text_encoder"], tokenizer)
    ref.unet_section(files, models["unet"], models["text_encoder"], tokenizer)
    ref.vae_section(files, models["vae"])
    ref.noise_section(files, folder)
    traces = ref.scheduler_traces(files)
    ref.scheduler_tables(folder, traces)
    ref.pipelines_section(files, folder, models, tokenizer)
    for f in files.values():
        f.write(folder)
    print(f"  reference data computed in {time.time() - start:.1f} s")
    return files


# MARK: - The full-size model (outside the repository)


def make_full(out: Path, fp16: bool, image_size: int) -> None:
    import full_size

    full_size.make_full(out, fp16=fp16, image_size=image_size, seed=WEIGHTS_SEED,
                        verify=verify_layouts, print_sizes=print_sizes)


if __name__ == "__main__":
    main()
