"""Reference inputs and outputs for the Swift tests, computed with diffusers/transformers/torch.

Every section records what goes in and what comes out, so a Swift test can feed the same
input to its own implementation and compare. Tensors are float32 and go to .safetensors
files; lists of numbers (token ids, timesteps, sigmas) go to JSON.

Sections:
  tokens        CLIP token ids for tricky prompts                   -> tokens.json
  text_encoder  hidden states of the text encoder                    -> text_encoder.safetensors
  unet          one noise prediction, time embeddings, block outputs -> unet.safetensors
  vae           encode (mean, log-variance) and decode of an image   -> vae.safetensors
  noise         torch.randn for several seeds and shapes             -> noise.safetensors, noise.json
  schedulers    timesteps / sigmas tables; step-by-step traces       -> schedulers.json, schedulers.safetensors
  pipelines     short txt2img runs (5 schedulers) and one img2img    -> pipelines.safetensors, pipelines.json
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import extract_bpe
import torch_rng
from sd_models import SD15_SCHEDULER_CONFIG, VAE_SCALING_FACTOR


# MARK: - Collecting tensors and their descriptions


@dataclass
class TensorFile:
    """The tensors of one .safetensors file, with one line of description each (for the README)."""

    name: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, tensor: torch.Tensor, note: str = "") -> None:
        assert key not in self.tensors, key
        self.tensors[key] = tensor.detach().to(torch.float32).contiguous().clone()
        self.notes[key] = note

    def write(self, folder: Path) -> Path:
        from safetensors.torch import save_file

        path = folder / self.name
        save_file(self.tensors, str(path), metadata={"format": "pt"})
        return path


def f32(x) -> float | list:
    """A float (or nested list) written with the shortest decimal that reads back as the same float32."""
    if isinstance(x, (list, tuple)):
        return [f32(v) for v in x]
    return float(str(np.float32(x)))


def timestep_value(t) -> int | float:
    """Timesteps are int64 for DDIM/PNDM/DPM-Solver and float32 for the Euler schedulers."""
    t = t.item() if isinstance(t, torch.Tensor) else t
    return t if isinstance(t, int) else f32(t)


def write_json(path: Path, data) -> Path:
    path.write_text(to_json(data) + "\n", encoding="utf-8")
    return path


def to_json(value, depth: int = 0) -> str:
    """JSON with one key per line but each list of plain values on a single line (compact, still diffable)."""
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {to_json(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in value):
        items = [inner + to_json(v, depth + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, ensure_ascii=False)


def generator(seed: int) -> torch.Generator:
    """Always the CPU generator: that is what diffusers' examples use and what the Swift port copies."""
    return torch.Generator("cpu").manual_seed(seed)


# MARK: - Prompts

ASTRONAUT = "a photograph of an astronaut riding a horse"
NEGATIVE = "blurry, low quality"
LONG_PROMPT = (
    "a highly detailed matte painting of a medieval castle on a cliff above a stormy sea at sunset, "
    "dramatic lighting, volumetric clouds, crashing waves, seagulls, tiny figures on the walls, "
    "banners in the wind, intricate stonework, moss and ivy, warm windows, reflections on wet rocks, "
    "by a famous landscape painter, trending on an art website, 8k resolution, octane render, "
    "cinematic composition, golden hour, masterpiece"
)

TOKEN_PROMPTS = [
    ("plain", ASTRONAUT),
    ("capitals_punctuation", "A Photo of a CAT, in the Style of Van Gogh!!!"),
    ("numbers", "1024x768 wallpaper, 3.14 pi, 42 cats, 1,000,000 dollars, 4k 35mm f/1.8"),
    ("apostrophes", "don't stop, it's fine; we'll see what they're doing"),
    ("curly_apostrophes", "don\u2019t stop, it\u2019s fine"),
    ("accents", "caf\u00e9 na\u00efve r\u00e9sum\u00e9"),
    ("accents_decomposed", "cafe\u0301 nai\u0308ve"),  # e + combining accent: NFC makes it é
    ("emoji", "a cat \U0001F431 wearing a top hat \U0001F3A9"),
    ("cjk", "\u6771\u4eac\u306e\u591c\u666f, \u4e00\u53ea\u732b"),
    ("whitespace", "  lots   of\tspaces \n and   newlines  "),
    ("symbols", "state-of-the-art, photo_realistic, #art @artist 100% (masterpiece:1.2) [best]"),
    ("html_entity", "rock &amp; roll"),
    ("empty", ""),
    ("long", LONG_PROMPT),
]


# MARK: - tokens


def tokens_section(folder: Path, tokenizer) -> Path:
    """Token ids from transformers' CLIPTokenizer (what diffusers uses), checked against open_clip's
    SimpleTokenizer (OpenAI CLIP's original algorithm). Where they disagree, both are recorded."""
    reference = extract_bpe.open_clip_tokenizer()
    entries = []
    for name, prompt in TOKEN_PROMPTS:
        ids = extract_bpe.transformers_ids(tokenizer, prompt)
        length = _unpadded_length(ids)
        entry = {
            "name": name,
            "prompt": prompt,
            "ids": ids,
            "length": length,
            "tokens": tokenizer.convert_ids_to_tokens(ids[:length]),
        }
        open_clip_ids = extract_bpe.open_clip_ids(reference, prompt)
        if open_clip_ids != ids:
            entry["open_clip_ids"] = open_clip_ids
            entry["note"] = _disagreement_note(name)
        full_length = len(tokenizer(prompt, verbose=False).input_ids)
        if full_length > extract_bpe.CONTEXT_LENGTH:
            entry["truncated_from"] = full_length
        entries.append(entry)

    data = {
        "description": (
            "CLIP token ids as Stable Diffusion 1.x builds them: <|startoftext|> (49406), at most 75 "
            "text tokens, <|endoftext|> (49407), then padding with <|endoftext|> to 77 ids. "
            "'ids' come from transformers' CLIPTokenizer, which diffusers uses; 'open_clip_ids', "
            "present only where different, from OpenAI CLIP's SimpleTokenizer (open_clip's copy), "
            "padded the same way. 'length' counts the ids before padding; 'tokens' are their "
            "vocabulary entries ('</w>' marks the end of a word, non-ASCII bytes appear as "
            "bytes_to_unicode characters)."
        ),
        "context_length": extract_bpe.CONTEXT_LENGTH,
        "start_of_text": 49406,
        "end_of_text": 49407,
        "pad": 49407,
        "prompts": entries,
    }
    return write_json(folder / "tokens.json", data)


def _unpadded_length(ids: list[int]) -> int:
    return ids.index(49407) + 1


def _disagreement_note(name: str) -> str:
    notes = {
        "curly_apostrophes": "OpenAI CLIP runs ftfy.fix_text, which turns \u2019 into ', so \"don\u2019t\" splits "
                             "like \"don't\"; the Hugging Face tokenizer does not.",
        "html_entity": "OpenAI CLIP un-escapes HTML entities twice (&amp; -> &); the Hugging Face tokenizer does not.",
    }
    return notes.get(name, "the two tokenizers disagree")


# MARK: - text encoder


def text_encoder_section(files: dict, text_encoder, tokenizer) -> None:
    f = files.setdefault("text_encoder", TensorFile("text_encoder.safetensors"))
    prompts = [ASTRONAUT, ""]
    ids = torch.tensor([extract_bpe.transformers_ids(tokenizer, p) for p in prompts])
    with torch.no_grad():
        out = text_encoder(ids, output_hidden_states=True)
    what = f'batch of 2 prompts: ["{ASTRONAUT}", ""] (ids in tokens.json, names "plain" and "empty")'
    f.add("text_encoder.last_hidden_state", out.last_hidden_state,
          f"after the final layer norm; this is what the UNet attends to. {what}")
    for i, h in enumerate(out.hidden_states):
        where = "token + position embeddings" if i == 0 else f"after encoder layer {i - 1} (before the final layer norm)"
        f.add(f"text_encoder.hidden_states.{i}", h, where)


def encode_prompts(text_encoder, tokenizer, prompts: list[str]) -> torch.Tensor:
    ids = torch.tensor([extract_bpe.transformers_ids(tokenizer, p) for p in prompts])
    with torch.no_grad():
        return text_encoder(ids).last_hidden_state


# MARK: - UNet

UNET_TIMESTEP = 981
TIME_EMBEDDING_TIMESTEPS = [0, 1, 250, 500, 981, 999]


def unet_section(files: dict, unet, text_encoder, tokenizer, latent_size: int = 16) -> None:
    f = files.setdefault("unet", TensorFile("unet.safetensors"))
    context = encode_prompts(text_encoder, tokenizer, ["", ASTRONAUT])
    sample = torch.randn((2, 4, latent_size, latent_size), generator=generator(5))
    f.add("unet.sample", sample, "input latents: torch.randn(2, 4, 16, 16) with seed 5")
    f.add("unet.encoder_hidden_states", context,
          f'text_encoder.last_hidden_state of ["", "{ASTRONAUT}"] (uncond first, as in the pipelines)')

    intermediates, hooks = _record_block_outputs(unet)
    with torch.no_grad():
        out = unet(sample, UNET_TIMESTEP, encoder_hidden_states=context).sample
    for hook in hooks:
        hook.remove()
    f.add("unet.out", out, f"noise prediction at timestep {UNET_TIMESTEP}")
    for name, tensor in intermediates.items():
        f.add(f"unet.{name}", tensor, BLOCK_NOTES.get(name.split(".")[0], ""))

    # A fractional timestep, as the Euler schedulers produce (e.g. 499.5 with 3 steps).
    with torch.no_grad():
        out_frac = unet(sample[1:], torch.tensor([499.5]), encoder_hidden_states=context[1:]).sample
    f.add("unet.out_t499_5", out_frac, "noise prediction for unet.sample[1:] with context[1:] at timestep 499.5")

    t = torch.tensor(TIME_EMBEDDING_TIMESTEPS)
    with torch.no_grad():
        sinusoid = unet.time_proj(t)
        embedding = unet.time_embedding(sinusoid)
    f.add("unet.time_proj", sinusoid,
          f"sinusoidal timestep features [cos | sin] for timesteps {TIME_EMBEDDING_TIMESTEPS}")
    f.add("unet.time_embedding", embedding, "time_embedding MLP (linear, SiLU, linear) of unet.time_proj")


BLOCK_NOTES = {
    "conv_in": "output of conv_in (the first layer), same run as unet.out",
    "down_blocks": "output of this down block, after its downsampler if it has one (same run)",
    "mid_block": "output of the middle block (same run)",
    "up_blocks": "output of this up block, after its upsampler if it has one (same run)",
}


def _record_block_outputs(unet) -> tuple[dict, list]:
    """Forward hooks that keep each block's output, to find where a re-implementation first differs."""
    outputs: dict[str, torch.Tensor] = {}
    hooks = []

    def keep(name):
        def hook(module, args, output):
            outputs[name] = (output[0] if isinstance(output, tuple) else output).detach().clone()
        return hook

    hooks.append(unet.conv_in.register_forward_hook(keep("conv_in")))
    for i, block in enumerate(unet.down_blocks):
        hooks.append(block.register_forward_hook(keep(f"down_blocks.{i}")))
    hooks.append(unet.mid_block.register_forward_hook(keep("mid_block")))
    for i, block in enumerate(unet.up_blocks):
        hooks.append(block.register_forward_hook(keep(f"up_blocks.{i}")))
    return outputs, hooks


# MARK: - VAE


def test_image(size: int) -> torch.Tensor:
    """A smooth, deterministic RGB picture in [0, 1], shape (1, 3, size, size)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    r = 0.5 + 0.5 * torch.sin(2 * torch.pi * (1.5 * x + 0.5 * y))
    g = y
    b = 0.5 + 0.5 * torch.cos(2 * torch.pi * 3 * x * y)
    return torch.stack([r, g, b])[None].to(torch.float32)


def vae_section(files: dict, vae, image_size: int = 32) -> None:
    f = files.setdefault("vae", TensorFile("vae.safetensors"))
    image = test_image(image_size) * 2 - 1  # the VAE works on [-1, 1]
    f.add("vae.image", image, f"input: test_image({image_size}) * 2 - 1, values in [-1, 1]")

    hooks, inner = [], {}
    for name, module in [("encoder.mid_block", vae.encoder.mid_block), ("decoder.mid_block", vae.decoder.mid_block),
                         ("decoder.up_blocks.0", vae.decoder.up_blocks[0]),
                         ("decoder.up_blocks.1", vae.decoder.up_blocks[1])]:
        hooks.append(module.register_forward_hook(
            lambda m, a, out, name=name: inner.__setitem__(name, out.detach().clone())))

    with torch.no_grad():
        dist = vae.encode(image).latent_dist
        latents = dist.mean * VAE_SCALING_FACTOR
        decoded = vae.decode(latents / VAE_SCALING_FACTOR).sample
    for hook in hooks:
        hook.remove()

    f.add("vae.latent_mean", dist.mean, "encoder mean (first 4 channels of quant_conv's output), before scaling")
    f.add("vae.latent_logvar", dist.logvar, "encoder log-variance (last 4 channels), clamped to [-30, 20]")
    f.add("vae.latents", latents, f"vae.latent_mean * {VAE_SCALING_FACTOR} (what the UNet sees)")
    f.add("vae.decoded", decoded, f"vae.decode(vae.latents / {VAE_SCALING_FACTOR}), before any clamping")
    for name, tensor in inner.items():
        f.add(f"vae.{name}", tensor, "output of this block during the encode/decode above")


# MARK: - Noise (torch.randn)

NOISE_SEEDS = [0, 42, 1234]


def noise_section(files: dict, folder: Path) -> Path:
    f = files.setdefault("noise", TensorFile("noise.safetensors"))
    for seed in NOISE_SEEDS:
        f.add(f"noise.seed{seed}.1x4x8x8", torch.randn((1, 4, 8, 8), generator=generator(seed)),
              f"torch.randn((1, 4, 8, 8), generator=Generator('cpu').manual_seed({seed}))")

    big = torch.randn((1, 4, 64, 64), generator=generator(42))
    flat = big.flatten()
    f.add("noise.seed42.1x4x64x64.first256", flat[:256],
          "first 256 values of torch.randn((1, 4, 64, 64)), seed 42 (equal to noise.seed42.1x4x8x8: "
          "draws of 16k and 16(k+n) values share their first 16k)")
    f.add("noise.seed42.1x4x64x64.last256", flat[-256:], "last 256 values of the same tensor")
    f.add("noise.seed7.1x4x5x5", torch.randn((1, 4, 5, 5), generator=generator(7)),
          "100 values: not a multiple of 16, so torch redraws and overwrites the last 16")
    for n in (1, 2, 3, 7, 15, 16, 17):
        path = "float64 Box-Muller, one value per element" if n < 16 else "float32 blocks of 16"
        f.add(f"noise.seed42.n{n}", torch.randn((n,), generator=generator(42)), f"torch.randn(({n},)), seed 42: {path}")

    g = generator(42)
    for i, n in enumerate((3, 3, 5)):
        f.add(f"noise.seed42.consecutive.{i}", torch.randn((n,), generator=g),
              "torch.randn((3,)), then (3,), then (5,) from ONE generator seeded 42: the small path caches "
              "its spare Box-Muller value across calls")
    f.add("noise.seed42.rand8", torch.rand((8,), generator=generator(42)),
          "torch.rand((8,)), seed 42: float32 uniforms = (mt19937 output & 0xFFFFFF) / 2^24")

    numpy_diff = torch_rng.check(verbose=False)
    stats = {
        "description": "Statistics of tensors too big to store, and how well torch_rng.py re-implements torch.randn.",
        "seed42_1x4x64x64": {"mean": float(big.double().mean()), "std": float(big.double().std()),
                             "sum": float(big.double().sum()), "numel": big.numel()},
        "torch_rng_numpy_max_abs_diff": numpy_diff,
    }
    return write_json(folder / "noise.json", stats)


# MARK: - Schedulers


def scheduler_classes() -> dict:
    """The five schedulers, each built from SD 1.5's scheduler config like users do (`from_config`)."""
    from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                           EulerDiscreteScheduler, PNDMScheduler)

    return {
        "ddim": (DDIMScheduler, {}),
        "pndm": (PNDMScheduler, {}),
        "euler": (EulerDiscreteScheduler, {}),
        "euler_ancestral": (EulerAncestralDiscreteScheduler, {}),
        "dpmpp_2m_karras": (DPMSolverMultistepScheduler,
                            {"use_karras_sigmas": True, "algorithm_type": "dpmsolver++", "solver_order": 2}),
    }


def make_scheduler(name: str):
    cls, overrides = scheduler_classes()[name]
    return cls.from_config(SD15_SCHEDULER_CONFIG, **overrides)


STEP_COUNTS = [1, 2, 3, 4, 5, 10, 20, 25, 50, 999]


def scheduler_tables(folder: Path, traces: dict) -> Path:
    """timesteps, sigmas and init_noise_sigma per scheduler and step count."""
    from diffusers import DDIMScheduler

    train = DDIMScheduler.from_config(SD15_SCHEDULER_CONFIG)
    data = {
        "description": (
            "Tables from diffusers' schedulers built with SD 1.5's scheduler config "
            "(scheduler/scheduler_config.json) plus the overrides listed. 'config' is the effective "
            "configuration. 'timesteps' are what the denoising loop iterates over; 'sigmas' (Euler, "
            "Euler ancestral, DPM-Solver) have one more entry, the final sigma. Floats are the "
            "shortest decimals that read back as the same float32."
        ),
        "train_schedule": {
            "note": "diffusers' own float32 computation; the LDM buffers in the single-file checkpoint "
                    "are computed in float64 and differ from these by a few units in the last place",
            "betas": f32(train.betas.tolist()),
            "alphas_cumprod": f32(train.alphas_cumprod.tolist()),
        },
        "schedulers": {},
    }
    for name, (cls, overrides) in scheduler_classes().items():
        scheduler = make_scheduler(name)
        entry = {"class": cls.__name__, "overrides": overrides, "order": scheduler.order,
                 "config": _jsonable_config(scheduler.config), "steps": {}}
        for n in STEP_COUNTS:
            entry["steps"][str(n)] = _schedule_entry(make_scheduler(name), n)
        data["schedulers"][name] = entry
    data["traces"] = traces
    return write_json(folder / "schedulers.json", data)


def _schedule_entry(scheduler, n: int) -> dict:
    try:
        scheduler.set_timesteps(n)
    except Exception as error:  # record refusals instead of failing
        return {"error": f"{type(error).__name__}: {error}"}
    entry = {"timesteps": [timestep_value(t) for t in scheduler.timesteps]}
    if getattr(scheduler, "sigmas", None) is not None:
        entry["sigmas"] = f32(scheduler.sigmas.tolist())
    entry["init_noise_sigma"] = f32(float(scheduler.init_noise_sigma))
    return entry


def _jsonable_config(config) -> dict:
    out = {}
    for k, v in dict(config).items():
        if k.startswith("_"):
            continue
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


TRACE_STEPS = 4
TRACE_DESCRIPTION = (
    "Each scheduler's loop with made-up model outputs (tensors <scheduler>.* in schedulers.safetensors): "
    "sample = torch.randn((1, 4, 8, 8), seed 100) * init_noise_sigma; then for each timestep t: "
    "model_input = scale_model_input(sample, t); model_output = the next torch.randn((1, 4, 8, 8)) from a "
    "generator seeded 200; sample = step(model_output, t, sample, generator=<one generator seeded 300>)"
    ".prev_sample (the generator is passed only to schedulers whose step() takes one)."
)


def scheduler_traces(files: dict) -> dict:
    """Each scheduler's loop with made-up model outputs, so scheduler maths can be tested without a UNet
    (see TRACE_DESCRIPTION)."""
    f = files.setdefault("schedulers", TensorFile("schedulers.safetensors"))
    timesteps = {}
    for name in scheduler_classes():
        scheduler = make_scheduler(name)
        scheduler.set_timesteps(TRACE_STEPS)
        noise = torch.randn((1, 4, 8, 8), generator=generator(100))
        sample = noise * scheduler.init_noise_sigma
        model_generator, step_generator = generator(200), generator(300)
        f.add(f"{name}.initial_sample", sample, "torch.randn((1, 4, 8, 8)) seed 100, times init_noise_sigma")
        for k, t in enumerate(scheduler.timesteps):
            model_input = scheduler.scale_model_input(sample, t)
            model_output = torch.randn((1, 4, 8, 8), generator=model_generator)
            sample = scheduler.step(model_output, t, sample, **_step_kwargs(scheduler, step_generator)).prev_sample
            f.add(f"{name}.step{k}.model_input", model_input, "scale_model_input(sample, t)")
            f.add(f"{name}.step{k}.model_output", model_output, "made-up noise prediction (seed 200 stream)")
            f.add(f"{name}.step{k}.prev_sample", sample, "step(...).prev_sample")
        timesteps[name] = [timestep_value(t) for t in scheduler.timesteps]
    return {"steps": TRACE_STEPS, "timesteps": timesteps, "description": TRACE_DESCRIPTION}


def _step_kwargs(scheduler, step_generator: torch.Generator) -> dict:
    """Pass a generator only to schedulers whose step takes one (as the pipelines do)."""
    accepts = inspect.signature(scheduler.step).parameters
    return {"generator": step_generator} if "generator" in accepts else {}


# MARK: - Pipelines

PIPELINE_SEED = 42
PIPELINE_STEPS = 4
GUIDANCE = 7.5
IMAGE_SIZE = 64  # pixels -> 8x8 latents
IMG2IMG = {"scheduler": "ddim", "strength": 0.6, "steps": 5, "seed": 7}


def pipeline_components(models: dict, tokenizer) -> dict:
    return dict(vae=models["vae"], text_encoder=models["text_encoder"], tokenizer=tokenizer, unet=models["unet"],
                safety_checker=None, feature_extractor=None, requires_safety_checker=False)


class UNetRecorder:
    """Records the UNet's input, timestep and output at every call the pipeline makes."""

    def __init__(self, unet):
        self.calls = []
        self._hook = unet.register_forward_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs, output):
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        self.calls.append({
            "sample": sample.detach().clone(),
            "timestep": timestep,
            "out": (output[0] if isinstance(output, tuple) else output.sample).detach().clone(),
        })

    def remove(self):
        self._hook.remove()


def run_and_record(pipe, recorder: UNetRecorder, **kwargs):
    """Run a pipeline; returns its image and the latents after each step (the recorder sees the UNet)."""
    latents_after_step = []

    def on_step_end(pipeline, i, t, callback_kwargs):
        latents_after_step.append(callback_kwargs["latents"].detach().clone())
        return callback_kwargs

    result = pipe(**kwargs, callback_on_step_end=on_step_end, output_type="np")
    return torch.from_numpy(result.images), latents_after_step


def add_step_tensors(f: TensorFile, prefix: str, recorder: UNetRecorder, latents_after: list) -> list:
    """Per step: the UNet input (one copy of the CFG batch [negative, prompt]), both predictions and the
    latents after the scheduler step. Returns the timesteps."""
    timesteps = []
    for k, (call, latents) in enumerate(zip(recorder.calls, latents_after)):
        uncond, text = call["out"].chunk(2)
        f.add(f"{prefix}.step{k}.model_input", call["sample"][:1],
              "UNet input at this step (after scale_model_input; the CFG batch holds it twice)")
        f.add(f"{prefix}.step{k}.noise_pred_uncond", uncond, "UNet output for the negative prompt")
        f.add(f"{prefix}.step{k}.noise_pred_text", text, "UNet output for the prompt")
        f.add(f"{prefix}.step{k}.latents", latents, "latents after this step's scheduler update")
        timesteps.append(timestep_value(call["timestep"]))
    return timesteps


def pipelines_section(files: dict, folder: Path, models: dict, tokenizer) -> Path:
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    f = files.setdefault("pipelines", TensorFile("pipelines.safetensors"))
    runs = {}
    components = pipeline_components(models, tokenizer)
    f.add("prompt_embeds", encode_prompts(models["text_encoder"], tokenizer, [ASTRONAUT]),
          f'text encoding of the prompt "{ASTRONAUT}"')
    f.add("negative_prompt_embeds", encode_prompts(models["text_encoder"], tokenizer, [NEGATIVE]),
          f'text encoding of the negative prompt "{NEGATIVE}"')
    noise = torch.randn((1, 4, IMAGE_SIZE // 8, IMAGE_SIZE // 8), generator=generator(PIPELINE_SEED))
    f.add("txt2img.noise", noise, f"torch.randn((1, 4, 8, 8)) with seed {PIPELINE_SEED}: every txt2img run starts here")

    for name in scheduler_classes():
        scheduler = make_scheduler(name)
        pipe = StableDiffusionPipeline(scheduler=scheduler, **components)
        pipe.set_progress_bar_config(disable=True)
        recorder = UNetRecorder(models["unet"])
        image, latents_after = run_and_record(
            pipe, recorder, prompt=ASTRONAUT, negative_prompt=NEGATIVE, height=IMAGE_SIZE, width=IMAGE_SIZE,
            num_inference_steps=PIPELINE_STEPS, guidance_scale=GUIDANCE, generator=generator(PIPELINE_SEED))
        recorder.remove()
        _check_start(recorder, noise * scheduler.init_noise_sigma, name, PIPELINE_STEPS)

        prefix = f"txt2img.{name}"
        f.add(f"{prefix}.initial_latents", noise * scheduler.init_noise_sigma,
              f"txt2img.noise * init_noise_sigma ({f32(float(scheduler.init_noise_sigma))})")
        timesteps = add_step_tensors(f, prefix, recorder, latents_after)
        f.add(f"{prefix}.image", image,
              "pipeline output (output_type='np'): clamp(vae.decode(latents / 0.18215) / 2 + 0.5, 0, 1), "
              "NHWC (1, 64, 64, 3)")
        runs[prefix] = {"scheduler": name, "timesteps": timesteps, "init_noise_sigma": f32(float(scheduler.init_noise_sigma))}

    runs["img2img.ddim"] = _img2img_run(f, models, components, StableDiffusionImg2ImgPipeline)

    data = {
        "description": (
            "Short runs of diffusers' StableDiffusionPipeline with the tiny model and each scheduler, and "
            "one StableDiffusionImg2ImgPipeline run. Classifier-free guidance batches [negative, prompt]: "
            "noise_pred = uncond + guidance_scale * (text - uncond). Tensors are in pipelines.safetensors."
        ),
        "prompt": ASTRONAUT,
        "negative_prompt": NEGATIVE,
        "guidance_scale": GUIDANCE,
        "height": IMAGE_SIZE,
        "width": IMAGE_SIZE,
        "num_inference_steps": PIPELINE_STEPS,
        "seed": PIPELINE_SEED,
        "generator": "torch.Generator('cpu').manual_seed(seed), passed to the pipeline",
        "runs": runs,
    }
    return write_json(folder / "pipelines.json", data)


def _img2img_run(f: TensorFile, models: dict, components: dict, pipeline_class) -> dict:
    """img2img: encode the picture, sample its latent, noise it to the strength's timestep, denoise."""
    scheduler = make_scheduler(IMG2IMG["scheduler"])
    pipe = pipeline_class(scheduler=scheduler, **components)
    pipe.set_progress_bar_config(disable=True)
    picture = test_image(IMAGE_SIZE)
    recorder = UNetRecorder(models["unet"])
    image, latents_after = run_and_record(
        pipe, recorder, prompt=ASTRONAUT, negative_prompt=NEGATIVE, image=picture, strength=IMG2IMG["strength"],
        num_inference_steps=IMG2IMG["steps"], guidance_scale=GUIDANCE, generator=generator(IMG2IMG["seed"]))
    recorder.remove()

    # Replay the random draws: the generator first samples the VAE's latent distribution, then the noise.
    g = generator(IMG2IMG["seed"])
    with torch.no_grad():
        dist = models["vae"].encode(picture * 2 - 1).latent_dist
    latent_size = IMAGE_SIZE // 8
    encoder_noise = torch.randn((1, 4, latent_size, latent_size), generator=g)
    image_latents = (dist.mean + dist.std * encoder_noise) * VAE_SCALING_FACTOR
    noise = torch.randn((1, 4, latent_size, latent_size), generator=g)
    start_timestep = recorder.calls[0]["timestep"]
    start_timestep = start_timestep if isinstance(start_timestep, torch.Tensor) else torch.tensor(start_timestep)
    initial = scheduler.add_noise(image_latents, noise, start_timestep.reshape(1))
    _check_start(recorder, initial, IMG2IMG["scheduler"], IMG2IMG["steps"])

    prefix = "img2img.ddim"
    f.add(f"{prefix}.input_image", picture, f"test_image({IMAGE_SIZE}) in [0, 1], NCHW; the pipeline maps it to [-1, 1]")
    f.add(f"{prefix}.encoder_noise", encoder_noise, f"1st draw of the generator (seed {IMG2IMG['seed']}): "
          "samples the VAE latent, mean + std * encoder_noise")
    f.add(f"{prefix}.image_latents", image_latents, "(mean + std * encoder_noise) * 0.18215")
    f.add(f"{prefix}.noise", noise, "2nd draw of the generator: the noise added to image_latents")
    f.add(f"{prefix}.initial_latents", initial, "scheduler.add_noise(image_latents, noise, first timestep)")
    timesteps = add_step_tensors(f, prefix, recorder, latents_after)
    f.add(f"{prefix}.image", image, "pipeline output (output_type='np'), NHWC (1, 64, 64, 3)")
    return {"scheduler": IMG2IMG["scheduler"], "strength": IMG2IMG["strength"],
            "num_inference_steps": IMG2IMG["steps"], "seed": IMG2IMG["seed"], "timesteps": timesteps,
            "note": f"int(num_inference_steps * strength) = {len(timesteps)} of the {IMG2IMG['steps']} "
                    f"DDIM timesteps are run, starting at {timesteps[0]}"}


def _check_start(recorder: UNetRecorder, expected_latents: torch.Tensor, name: str, steps: int) -> None:
    """Our replay of the pipeline's random draws must give the UNet input it actually saw at step 0."""
    fresh = make_scheduler(name)
    fresh.set_timesteps(steps)
    t0 = recorder.calls[0]["timestep"]
    expected_input = fresh.scale_model_input(expected_latents, t0)
    seen = recorder.calls[0]["sample"][:1]
    assert torch.allclose(seen, expected_input, atol=1e-6, rtol=1e-6), f"{name}: replayed start differs"


