"""The committed tiny Stable Diffusion fixture as a diffusers pipeline, for the scripts that build on it.

`make_taesd_reference.py` and `make_lora_reference.py` start from the model `make_reference.py`
wrote (Tests/StableDiffusionTests/Fixtures/tiny/diffusers), not from a fresh one, so their
references belong to the very files the Swift tests load.

That folder leaves out the tokenizer's 2 MB vocabulary. The vocabulary is derived from CLIP's BPE
merges (see extract_bpe.py), and the Swift package ships those merges as a resource, so the
tokenizer is rebuilt here from that resource (no open_clip needed) and checked against the token
ids recorded in reference/tokens.json.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

import extract_bpe  # noqa: E402
import reference_data as ref  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "Tests" / "StableDiffusionTests" / "Fixtures"
TINY_FOLDER = FIXTURES / "tiny" / "diffusers"


def shown(path: Path) -> str:
    """Paths inside the repository are printed relative to it."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def print_sizes(root: Path) -> None:
    """Every file under `root` with its size, and the total: what a script wrote."""
    print(f"\n  files under {shown(root)}:")
    total = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        total += path.stat().st_size
        print(f"    {path.stat().st_size:>10,}  {path.relative_to(root)}")
    print(f"    {total:>10,}  total ({total / 2**20:.2f} MiB)")


def quiet_libraries() -> None:
    """No progress bars or advice from the libraries: the scripts print what they check."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    warnings.filterwarnings("ignore", category=FutureWarning)
    for logging in (diffusers_logging, transformers_logging):
        logging.set_verbosity_error()
        logging.disable_progress_bar()


def versions(also: tuple[str, ...] = ("peft", "numpy")) -> dict:
    """The libraries the reference data depends on, with `also`'s packages when installed."""
    import importlib.metadata as md

    import diffusers
    import transformers

    found = {"torch": torch.__version__, "diffusers": diffusers.__version__,
             "transformers": transformers.__version__, "safetensors": md.version("safetensors")}
    for package in also:
        try:
            found[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    return found


def resource_merges() -> list[tuple[str, str]]:
    """CLIP's merges from the Swift resource: its first line is a header, then one merge per line."""
    lines = extract_bpe.RESOURCE_FILE.read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split()) for line in lines[1:] if line]
    assert len(merges) == extract_bpe.NUM_MERGES, len(merges)
    return merges


def tokenizer():
    """transformers' CLIPTokenizer with SD 1.x's settings (those of the committed folder)."""
    from transformers import CLIPTokenizer

    merges = resource_merges()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "vocab.json").write_text(json.dumps(extract_bpe.build_vocab(merges), ensure_ascii=False),
                                           encoding="utf-8")
        (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n",
                                           encoding="utf-8")
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(TINY_FOLDER / "tokenizer" / name, folder / name)
        result = CLIPTokenizer.from_pretrained(str(folder))
    _check_against_recorded_ids(result)
    return result


def _check_against_recorded_ids(tok) -> None:
    recorded = json.loads((FIXTURES / "reference" / "tokens.json").read_text(encoding="utf-8"))["prompts"]
    for entry in recorded:
        assert extract_bpe.transformers_ids(tok, entry["prompt"]) == entry["ids"], entry["name"]


def load(scheduler=None, **components):
    """StableDiffusionPipeline.from_pretrained on the committed folder, in float32 (its float16
    weights are read and widened; they are float16-exact, so nothing changes), with the rebuilt
    tokenizer and no safety checker. `components` replace parts (e.g. vae=...)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(
        str(TINY_FOLDER), tokenizer=tokenizer(), torch_dtype=torch.float32, local_files_only=True,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False, **components)
    if scheduler is not None:
        pipe.scheduler = scheduler
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generator(seed: int) -> torch.Generator:
    """The CPU generator, as everywhere in the reference data."""
    return torch.Generator("cpu").manual_seed(seed)


RUN_SETTINGS = ("prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "height", "width")

# The run the LoRA and TAESD references record: reference_data's prompts, guidance and seed, DDIM,
# 2 steps at 64x64 (the Swift side: PipelineTests.request(.ddim) with 2 steps).
TWO_STEP_RUN = {
    "prompt": ref.ASTRONAUT,
    "negative_prompt": ref.NEGATIVE,
    "scheduler": "ddim",
    "num_inference_steps": 2,
    "guidance_scale": ref.GUIDANCE,
    "height": 64,
    "width": 64,
    "seed": ref.PIPELINE_SEED,
}


@torch.no_grad()
def run_recording_latents(pipe, settings: dict) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A generation with `settings` (RUN_SETTINGS and "seed"): the picture (output_type="np",
    NHWC float32 in [0, 1]) and the latents after every step, as the Swift tests compare them."""
    latents_after = []

    def on_step_end(pipeline, i, t, callback_kwargs):
        latents_after.append(callback_kwargs["latents"].detach().clone())
        return callback_kwargs

    image = pipe(**{k: settings[k] for k in RUN_SETTINGS}, generator=generator(settings["seed"]), output_type="np",
                 callback_on_step_end=on_step_end).images
    return torch.from_numpy(image), latents_after
