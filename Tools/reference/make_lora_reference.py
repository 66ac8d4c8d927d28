#!/usr/bin/env python3
"""Reference data for LoRA files: random LoRAs for the tiny SD fixture in the three layouts people
download, loaded and fused by diffusers.

A LoRA changes a layer's weight W (a matrix, or a convolution kernel) by a low-rank product:

    W' = W + s * (alpha / r) * up @ down

with `down` (r, in[, kh, kw]) and `up` (out, r[, 1, 1]); for a convolution the product is taken
over r with the kernel dimensions kept: delta[o, i, y, x] = sum_k up[o, k] down[k, i, y, x].
r is the rank, alpha the file's "network alpha" and s the strength the user asks for.

This script draws one such LoRA (seeded, rounded to float16 values) for a selection of the tiny
model's layers covering every kind a LoRA touches (attention and feed-forward linears, the time
embedding projection, 1x1 and 3x3 convolutions, the text encoder's attention and MLP), and writes
the very same change in three layouts:

  (a) kohya / sd-scripts:  lora_unet_<path with _>.lora_down.weight / .lora_up.weight / .alpha
  (b) PEFT, as diffusers' `save_lora_weights` writes it from a PEFT-adapted pipeline:
      unet.<path>.lora_A.weight / .lora_B.weight, alpha in the safetensors metadata
  (c) the older diffusers layout: unet.<path>.lora.down.weight / .lora.up.weight, no alpha

Each file is loaded with `pipe.load_lora_weights` (no warnings allowed) and fused with
`pipe.fuse_lora(lora_scale=0.7)`; every fused weight is compared with the formula above computed
here independently, and a 2-step generation is recorded with and without the LoRA.

Usage (from the repository root, in the reference venv with peft; nothing is downloaded):

    python Tools/reference/make_lora_reference.py

It writes Tests/StableDiffusionTests/Fixtures/lora/ (described in the README.md it writes there).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference_data as ref  # noqa: E402
import tiny_pipeline  # noqa: E402

OUTPUT = tiny_pipeline.FIXTURES / "lora"
LORA_SEED = 5  # the tiny SD uses seeds 1-3, the tiny TAESD 4
LORA_SCALE = 0.7  # the strength every file is fused with (s above)

# The layers the LoRA changes, by diffusers module path, with (rank, alpha). A real LoRA covers
# all the layers of the kinds it trains; this one takes one or two of each kind, which keeps the
# files small and also checks that the layers it does not name stay untouched.
#
# The ranks and alphas differ by kind, as in kohya's "LoCon" LoRAs (a conv_dim and conv_alpha for
# the 3x3 kernels) and because the tiny text encoder is only 4 wide. alpha / rank is 0.5 or 2,
# never 1, so a loader that ignores alpha gets a different picture; and it is a power of two, so
# layout (c), which has no alpha, can hold the same change exactly (its `up` is multiplied by it).
LINEAR = (4, 2.0)  # UNet linears and 1x1 convolutions: rank 4, alpha 2 (x 0.5)
CONV3X3 = (2, 4.0)  # UNet 3x3 convolutions: rank 2, alpha 4 (x 2)
TEXT = (2, 1.0)  # text encoder: rank 2, alpha 1 (x 0.5)

_BLOCK = "down_blocks.0.attentions.0.transformer_blocks.0"
UNET_LAYERS = {
    # the transformer of the first level: self-attention, the cross-attention key (4 -> 16: it
    # reads the text encoder's output), the feed-forward layers, proj_in and proj_out
    f"{_BLOCK}.attn1.to_q": LINEAR,
    f"{_BLOCK}.attn1.to_k": LINEAR,
    f"{_BLOCK}.attn1.to_v": LINEAR,
    f"{_BLOCK}.attn1.to_out.0": LINEAR,
    f"{_BLOCK}.attn2.to_k": LINEAR,
    f"{_BLOCK}.ff.net.0.proj": LINEAR,  # 16 -> 128 (GEGLU: value and gate halves)
    f"{_BLOCK}.ff.net.2": LINEAR,  # 64 -> 16
    "down_blocks.0.attentions.0.proj_in": LINEAR,  # 1x1 convolutions in SD 1.x
    "down_blocks.0.attentions.0.proj_out": LINEAR,
    # the middle block and the last up block (their names convert differently from kohya's)
    "mid_block.attentions.0.transformer_blocks.0.attn1.to_q": LINEAR,
    "mid_block.attentions.0.transformer_blocks.0.attn2.to_k": LINEAR,
    "up_blocks.3.attentions.2.transformer_blocks.0.attn1.to_out.0": LINEAR,
    "up_blocks.3.attentions.2.transformer_blocks.0.ff.net.2": LINEAR,
    "up_blocks.3.attentions.2.proj_out": LINEAR,
    # resnets: 3x3 kernels, the time embedding projection, a 1x1 shortcut (32 -> 16 channels)
    "down_blocks.0.resnets.0.conv1": CONV3X3,
    "down_blocks.0.resnets.0.conv2": CONV3X3,
    "down_blocks.0.resnets.0.time_emb_proj": LINEAR,
    "up_blocks.1.resnets.0.conv1": CONV3X3,
    "up_blocks.1.resnets.0.conv_shortcut": LINEAR,
    # a downsampler (stride 2) and an upsampler convolution
    "down_blocks.0.downsamplers.0.conv": CONV3X3,
    "up_blocks.0.upsamplers.0.conv": CONV3X3,
}
TEXT_LAYERS = {  # the first of the text encoder's two layers, and one projection of the second
    **{f"text_model.encoder.layers.0.{name}": TEXT
       for name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                    "mlp.fc1", "mlp.fc2")},
    "text_model.encoder.layers.1.self_attn.v_proj": TEXT,
}

# Fused weights recorded for the Swift tests (diffusers key names, component prefix first): a
# square and a non-square linear, a 1x1 and a 3x3 convolution, two text encoder linears.
RECORDED_WEIGHTS = [
    f"unet.{_BLOCK}.attn1.to_q.weight",
    f"unet.{_BLOCK}.attn2.to_k.weight",
    "unet.down_blocks.0.attentions.0.proj_in.weight",
    "unet.down_blocks.0.resnets.0.conv1.weight",
    "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.weight",
    "text_encoder.text_model.encoder.layers.0.mlp.fc1.weight",
]

# The pictures the Swift tests compare: the same 2-step run as the TAESD references.
RUN = tiny_pipeline.TWO_STEP_RUN


def allow_installed_peft() -> None:
    """transformers 5.25 refuses to add or load adapters on its models (the text encoder) unless
    peft >= 0.22.0 is installed, but the newest peft release is 0.21.2 (which provides everything
    transformers calls). So the check is lowered to the installed version; the script's own checks
    (fused weights against the formula, the pictures) show the adapters work."""
    import peft
    import transformers.integrations.peft as transformers_peft

    transformers_peft.MIN_PEFT_VERSION = min(transformers_peft.MIN_PEFT_VERSION, peft.__version__)


# MARK: - The LoRA


@dataclass
class LoRALayer:
    component: str  # "unet" or "text_encoder"
    path: str  # diffusers / transformers module path inside the component
    rank: int
    alpha: float
    down: torch.Tensor  # (r, in) or (r, in, kh, kw), float16 values
    up: torch.Tensor  # (out, r) or (out, r, 1, 1)

    @property
    def factor(self) -> float:
        return self.alpha / self.rank

    def delta(self) -> torch.Tensor:
        """up @ down in float64, shaped like the layer's weight."""
        up, down = self.up.double(), self.down.double()
        if down.ndim == 2:
            return up @ down
        return torch.einsum("ok,kiyx->oiyx", up[:, :, 0, 0], down)


def live_path(model, path: str) -> str:
    """A module path of our tables in the loaded model. The tables use the classic transformers
    names of the text encoder (`text_model.encoder.layers...`, as in the committed checkpoint and
    in kohya files); transformers 5 flattened CLIPTextModel, whose modules are now
    `encoder.layers...` (it renames the stored keys when loading)."""
    if path.startswith("text_model.") and not hasattr(model, "text_model"):
        return path.removeprefix("text_model.")
    return path


def classic_path(model, name: str) -> str:
    """The inverse of live_path: a name in the loaded model as our tables (and the committed
    checkpoint) spell it."""
    if type(model).__name__ == "CLIPTextModel" and not hasattr(model, "text_model"):
        return "text_model." + name
    return name


def draw_lora(pipe) -> list[LoRALayer]:
    """One LoRA for the layers above: down and up drawn as 0.5 N(0, 1) / sqrt(fan_in) of each
    matrix (so up @ down is about a quarter of the weight it changes, times alpha / r and the
    strength), in the order of the tables, from one generator; rounded to float16 values."""
    g = tiny_pipeline.generator(LORA_SEED)
    layers = []
    for component, table in (("unet", UNET_LAYERS), ("text_encoder", TEXT_LAYERS)):
        model = getattr(pipe, component)
        for path, (rank, alpha) in table.items():
            weight = model.get_submodule(live_path(model, path)).weight
            out_features, in_features = weight.shape[:2]
            kernel = tuple(weight.shape[2:])  # () for a linear layer
            down = torch.randn((rank, in_features) + kernel, generator=g)
            down = 0.5 * down / (down[0].numel() ** 0.5)
            up = torch.randn((out_features, rank) + (1,) * len(kernel), generator=g)
            up = (0.5 * up / rank**0.5).half()
            # Layout (c) stores up * alpha / r; halving a float16 value below 2^-13 would leave the
            # normal range and lose bits, so the (rare) tiny values become 0.
            up[up.abs() < 2**-12] = 0
            layers.append(LoRALayer(component, path, rank, alpha, down.half(), up))
    return layers


def expected_weights(pipe, lora: list[LoRALayer], scale: float) -> dict[str, torch.Tensor]:
    """W + scale * (alpha / r) * up @ down for every changed layer, in float64 (keys as recorded)."""
    out = {}
    for layer in lora:
        model = getattr(pipe, layer.component)
        weight = model.get_submodule(live_path(model, layer.path)).weight.detach().double()
        out[f"{layer.component}.{layer.path}.weight"] = weight + scale * layer.factor * layer.delta()
    return out


# MARK: - The three layouts


def kohya_name(layer: LoRALayer) -> str:
    """kohya's module name: a prefix for the network, then the module path with "_" for ".".
    (The paths are diffusers' for the UNet: sd-scripts trains SD 1.x on the diffusers UNet.)"""
    prefix = "lora_unet_" if layer.component == "unet" else "lora_te_"
    return prefix + layer.path.replace(".", "_")


def kohya_state_dict(lora: list[LoRALayer]) -> dict[str, torch.Tensor]:
    """(a) float16, alpha a 0-d float16 tensor per module, as sd-scripts saves with fp16 precision."""
    state = {}
    for layer in lora:
        name = kohya_name(layer)
        state[f"{name}.lora_down.weight"] = layer.down
        state[f"{name}.lora_up.weight"] = layer.up
        state[f"{name}.alpha"] = torch.tensor(layer.alpha, dtype=torch.float16)
    return state


def old_diffusers_name(layer: LoRALayer, part: str) -> str:
    """(c) diffusers 0.21-0.24 (LoRACompatibleLinear/Conv): `<path>.lora.down.weight` in the UNet;
    the text encoder's patched layers used `<path>.lora_linear_layer.down.weight`."""
    if layer.component == "unet":
        return f"unet.{layer.path}.lora.{part}.weight"
    return f"text_encoder.{layer.path}.lora_linear_layer.{part}.weight"


def old_diffusers_state_dict(lora: list[LoRALayer]) -> dict[str, torch.Tensor]:
    """(c) float16, no alpha: the loader takes alpha = rank, so alpha / r goes into `up` (exact,
    alpha / r being a power of two)."""
    state = {}
    for layer in lora:
        state[old_diffusers_name(layer, "down")] = layer.down
        state[old_diffusers_name(layer, "up")] = (layer.up.double() * layer.factor).half()
        assert torch.equal(state[old_diffusers_name(layer, "up")].double(), layer.up.double() * layer.factor)
    return state


def peft_config(lora: list[LoRALayer], component: str, model):
    """One LoraConfig per component: the most common rank / alpha as r / lora_alpha, the others in
    rank_pattern / alpha_pattern (PEFT matches those keys as module-name suffixes)."""
    from collections import Counter

    from peft import LoraConfig

    layers = [layer for layer in lora if layer.component == component]
    r, alpha = Counter((layer.rank, layer.alpha) for layer in layers).most_common(1)[0][0]
    return LoraConfig(
        r=r, lora_alpha=alpha, init_lora_weights=False,
        target_modules=[live_path(model, layer.path) for layer in layers],
        rank_pattern={live_path(model, layer.path): layer.rank for layer in layers if layer.rank != r},
        alpha_pattern={live_path(model, layer.path): layer.alpha for layer in layers if layer.alpha != alpha},
    )


@torch.no_grad()
def write_peft_file(lora: list[LoRALayer], path: Path) -> None:
    """(b) As a diffusers user or training script makes it: add PEFT adapters to the pipeline's
    UNet and text encoder, (train them; here: set them to our values), then

        StableDiffusionPipeline.save_lora_weights(dir,
            unet_lora_layers=get_peft_model_state_dict(pipe.unet),
            text_encoder_lora_layers=get_peft_model_state_dict(pipe.text_encoder),
            unet_lora_adapter_metadata=pipe.unet.peft_config["default"].to_dict(),
            text_encoder_lora_adapter_metadata=...)

    The metadata is what carries alpha (see the README). Float32, like the pipeline it came from."""
    from diffusers import StableDiffusionPipeline
    from peft.utils import get_peft_model_state_dict

    pipe = tiny_pipeline.load()
    for component in ("unet", "text_encoder"):
        model = getattr(pipe, component)
        model.add_adapter(peft_config(lora, component, model))
    for layer in lora:
        model = getattr(pipe, layer.component)
        module = model.get_submodule(live_path(model, layer.path))
        module.lora_A["default"].weight.copy_(layer.down)
        module.lora_B["default"].weight.copy_(layer.up)

    def metadata(model) -> dict:
        # to_dict() holds target_modules as a set; a sorted list keeps the file the same from run
        # to run (save_lora_weights would list the set in hash order).
        # base_model_name_or_path would record the folder the text encoder was loaded from (a path
        # of this machine); a hub download would record the model id. Left empty, as for the UNet.
        config = model.peft_config["default"].to_dict()
        config["base_model_name_or_path"] = None
        return {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}

    with tempfile.TemporaryDirectory() as scratch:
        StableDiffusionPipeline.save_lora_weights(
            scratch,
            unet_lora_layers=get_peft_model_state_dict(pipe.unet),
            text_encoder_lora_layers=get_peft_model_state_dict(pipe.text_encoder),
            unet_lora_adapter_metadata=metadata(pipe.unet),
            text_encoder_lora_adapter_metadata=metadata(pipe.text_encoder),
        )
        shutil.copy(Path(scratch) / "pytorch_lora_weights.safetensors", path)
    sort_metadata_keys(path)


def sort_metadata_keys(path: Path) -> None:
    """safetensors writes the `__metadata__` entries in the order of a Rust HashMap, which changes
    from run to run once there are two ("format" and "lora_adapter_metadata"). Put them in sorted
    order so the file is the same every time; nothing else in the file changes."""
    import struct

    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    written_order = list(header["__metadata__"])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    assert len(text) <= length
    text += b" " * (length - len(text))  # safetensors pads the header with spaces
    if written_order == sorted(written_order):  # then our serialisation must be safetensors' own
        assert text == data[8:8 + length], "re-serialising the header changed it"
    path.write_bytes(data[:8] + text + data[8 + length:])


# MARK: - Loading them back with diffusers


class CollectWarnings(logging.Handler):
    """Everything diffusers, transformers and peft warn about while a LoRA loads."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __enter__(self):
        self._loggers = [logging.getLogger(name) for name in ("diffusers", "transformers", "peft")]
        self._levels = [logger.level for logger in self._loggers]
        for logger in self._loggers:
            logger.setLevel(logging.WARNING)
            logger.addHandler(self)
        self._warnings = warnings.catch_warnings(record=True)
        self._caught = self._warnings.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._warnings.__exit__(*exc)
        self.messages += [str(w.message) for w in self._caught]
        for logger, level in zip(self._loggers, self._levels):
            logger.removeHandler(self)
            logger.setLevel(level)


@torch.no_grad()
def load_and_fuse(path: Path, lora: list[LoRALayer], scale: float):
    """A fresh tiny pipeline with the LoRA file loaded and fused; checks that diffusers found every
    layer with the right rank and alpha / r, warned about nothing, and fused the formula's weights."""
    pipe = tiny_pipeline.load(scheduler=ref.make_scheduler(RUN["scheduler"]))
    base = expected_weights(pipe, lora, 0.0)
    with CollectWarnings() as caught:
        pipe.load_lora_weights(str(path))
    assert not caught.messages, f"{path.name}: {caught.messages}"

    adapted = {}
    for component in ("unet", "text_encoder"):
        model = getattr(pipe, component)
        for name, module in model.named_modules():
            if hasattr(module, "lora_A") and module.lora_A:
                (adapter,) = module.lora_A.keys()
                adapted[f"{component}.{classic_path(model, name)}"] = (module.r[adapter], module.scaling[adapter])
    expected = {f"{layer.component}.{layer.path}": (layer.rank, layer.factor) for layer in lora}
    assert adapted.keys() == expected.keys(), sorted(set(adapted) ^ set(expected))
    for name, (rank, factor) in expected.items():
        found_rank, found_scaling = adapted[name]
        if path.name.startswith("diffusers_old"):
            factor = 1.0  # no alpha in the file: alpha = rank, and the factor lives in `up`
        assert found_rank == rank and abs(found_scaling - factor) < 1e-12, (name, adapted[name], rank, factor)

    pipe.fuse_lora(lora_scale=scale)
    fused = {f"{c}.{classic_path(getattr(pipe, c), name)}": p.detach().clone() for c in ("unet", "text_encoder")
             for name, p in getattr(pipe, c).named_parameters() if "lora_" not in name}
    fused = {k.replace(".base_layer.", "."): v for k, v in fused.items()}
    worst = 0.0
    for layer in lora:
        key = f"{layer.component}.{layer.path}.weight"
        want = base[key] + scale * layer.factor * layer.delta()
        got = fused[key].double()
        worst = max(worst, float((got - want).abs().max() / want.abs().max()))
        assert not torch.equal(got, base[key]), key
    assert worst < 1e-6, worst
    return pipe, fused, worst


# MARK: - Pipeline runs


@torch.no_grad()
def run(pipe) -> dict[str, torch.Tensor]:
    """The 2-step generation; the text encodings, each step's latents and the picture."""
    image, latents_after = tiny_pipeline.run_recording_latents(pipe, RUN)
    out = {
        "prompt_embeds": ref.encode_prompts(pipe.text_encoder, pipe.tokenizer, [RUN["prompt"]]),
        "negative_prompt_embeds": ref.encode_prompts(pipe.text_encoder, pipe.tokenizer, [RUN["negative_prompt"]]),
    }
    for k, latents in enumerate(latents_after):
        out[f"step{k}.latents"] = latents
    out["image"] = image
    return out


@torch.no_grad()
def image_with_weights(weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """The run on a plain pipeline (no PEFT layers) whose changed weights are replaced by `weights`."""
    pipe = tiny_pipeline.load(scheduler=ref.make_scheduler(RUN["scheduler"]))
    for key, value in weights.items():
        component, name = key.split(".", 1)
        model = getattr(pipe, component)
        model.get_parameter(live_path(model, name)).copy_(value)
    return run(pipe)["image"]


# MARK: - Main


FORMATS = {
    # file name: (layout, what)
    "kohya.safetensors": ("kohya", "(a) kohya / sd-scripts, float16"),
    "peft.safetensors": ("peft", "(b) PEFT keys, written by StableDiffusionPipeline.save_lora_weights, float32"),
    "diffusers_old.safetensors": ("diffusers_old", "(c) diffusers 0.21-0.24 keys, float16"),
}


def main() -> None:
    tiny_pipeline.quiet_libraries()
    allow_installed_peft()
    torch.set_grad_enabled(False)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in tiny_pipeline.versions().items()))
    print(f"\n== LoRA fixtures -> {OUTPUT.relative_to(tiny_pipeline.REPO_ROOT)}")
    if OUTPUT.exists():
        shutil.rmtree(OUTPUT)
    OUTPUT.mkdir(parents=True)

    plain = tiny_pipeline.load(scheduler=ref.make_scheduler(RUN["scheduler"]))
    lora = draw_lora(plain)
    print(f"  {len(lora)} layers, {sum(l.down.numel() + l.up.numel() for l in lora):,} LoRA numbers")
    save_file(kohya_state_dict(lora), str(OUTPUT / "kohya.safetensors"), metadata={"format": "pt"})
    save_file(old_diffusers_state_dict(lora), str(OUTPUT / "diffusers_old.safetensors"), metadata={"format": "pt"})
    write_peft_file(lora, OUTPUT / "peft.safetensors")

    check_peft_alpha_comes_from_metadata(lora)

    base = run(plain)
    want = expected_weights(plain, lora, LORA_SCALE)
    expected_image = image_with_weights({k: v.float() for k, v in want.items()})
    results, fused_by_format = {}, {}
    for file_name, (layout, _) in FORMATS.items():
        pipe, fused, worst = load_and_fuse(OUTPUT / file_name, lora, LORA_SCALE)
        results[layout] = run(pipe)
        fused_by_format[layout] = fused
        difference = float((results[layout]["image"] - expected_image).abs().max())
        print(f"  {file_name}: loads without warnings; fused weights within {worst:.1e} (relative) of "
              f"W + {LORA_SCALE} (alpha / r) up @ down; picture within {difference:.1e} of the formula's")
        assert difference < 1e-5, difference

    # The three layouts hold the same change, so they must give the same numbers.
    first = results["kohya"]
    for layout, result in results.items():
        for key in first:
            assert torch.allclose(result[key], first[key], atol=1e-6, rtol=0), (layout, key)
        for key in RECORDED_WEIGHTS:
            assert torch.allclose(fused_by_format[layout][key], fused_by_format["kohya"][key], atol=1e-7, rtol=0)

    change = picture_change(base["image"], first["image"], want)
    tensors, notes = {}, {}
    for name, result, what in (("base", base, "without the LoRA"),
                               ("lora", first, f"with any of the three files fused at lora_scale {LORA_SCALE}")):
        for key, value in result.items():
            tensors[f"{name}.{key}"] = value
            notes[f"{name}.{key}"] = f"{RUN_NOTES['step' if key.startswith('step') else key]}, {what}"
    for key in RECORDED_WEIGHTS:
        tensors[f"fused.{key}"] = fused_by_format["kohya"][key]
        notes[f"fused.{key}"] = (f"{key} after fuse_lora(lora_scale={LORA_SCALE}); W + {LORA_SCALE} (alpha / r) "
                                 "up @ down (the same for the three files)")
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, str(OUTPUT / "reference.safetensors"),
              metadata={"format": "pt"})
    data = reference_json(lora, tensors, notes, change)
    ref.write_json(OUTPUT / "reference.json", data)
    write_readme(lora, tensors, notes, change)
    print(f"  picture change: max {change['max_abs']:.3f}, mean {change['mean_abs']:.4f} "
          f"(float16 rounding of the fused weights: max {change['fp16_rounding_max_abs']:.1e})")
    total = 0
    for path in sorted(OUTPUT.iterdir()):
        total += path.stat().st_size
        print(f"    {path.stat().st_size:>10,}  {path.name}")
    print(f"    {total:>10,}  total")


RUN_NOTES = {
    "prompt_embeds": f'text encoder output for "{RUN["prompt"]}" (1, 77, 4)',
    "negative_prompt_embeds": f'text encoder output for "{RUN["negative_prompt"]}" (1, 77, 4)',
    "step": "latents after this step's scheduler update",
    "image": "pipeline output (output_type='np'), NHWC (1, 64, 64, 3), float32 in [0, 1]",
}


@torch.no_grad()
def check_peft_alpha_comes_from_metadata(lora: list[LoRALayer]) -> None:
    """Layout (b) keeps alpha only in the safetensors metadata. The same tensors passed without it
    load with alpha = r (factor 1): that is diffusers' rule when no alpha is given."""
    from safetensors.torch import load_file

    pipe = tiny_pipeline.load()
    pipe.load_lora_weights(load_file(str(OUTPUT / "peft.safetensors")))  # a dict: no metadata
    module = pipe.unet.get_submodule(f"{_BLOCK}.attn1.to_q")
    assert module.scaling["default_0"] == 1.0, module.scaling
    conv = pipe.unet.get_submodule("down_blocks.0.resnets.0.conv1")
    assert conv.r["default_0"] == 2 and conv.scaling["default_0"] == 1.0, (conv.r, conv.scaling)


@torch.no_grad()
def picture_change(base: torch.Tensor, with_lora: torch.Tensor, fused: dict[str, torch.Tensor]) -> dict:
    """How much the LoRA moves the picture, next to how much float16 rounding of the fused weights
    (what a float16 model with the LoRA merged would hold) moves it."""
    rounded = image_with_weights({k: v.half().float() for k, v in fused.items()})
    exact = image_with_weights({k: v.float() for k, v in fused.items()})
    diff = (with_lora - base).abs()
    return {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "fraction_above_0.01": float((diff > 0.01).float().mean()),
        "fp16_rounding_max_abs": float((rounded - exact).abs().max()),
    }


def reference_json(lora, tensors, notes, change) -> dict:
    def peft_metadata() -> dict:
        with safe_open(str(OUTPUT / "peft.safetensors"), "pt") as f:
            return json.loads(f.metadata()["lora_adapter_metadata"])

    return {
        "description": "LoRA reference data for the tiny SD fixture; see README.md. Tensors in reference.safetensors.",
        "lora_scale": LORA_SCALE,
        "seed": LORA_SEED,
        "files": {name: {"layout": layout, "what": what} for name, (layout, what) in FORMATS.items()},
        "layers": [{"path": f"{l.component}.{l.path}", "kohya": kohya_name(l), "rank": l.rank, "alpha": l.alpha}
                   for l in lora],
        "peft_metadata": {k: v for k, v in peft_metadata().items()
                          if k.split(".", 1)[1] in ("r", "lora_alpha", "rank_pattern", "alpha_pattern")},
        "run": {**RUN, "generator": "torch.Generator('cpu').manual_seed(seed), passed to the pipeline"},
        "picture_change": change,
        "tensors": {k: list(v.shape) for k, v in tensors.items()},
    }


# MARK: - README


def write_readme(lora, tensors, notes, change) -> None:
    versions = ", ".join(f"{k} {v}" for k, v in tiny_pipeline.versions().items())
    files = "\n".join(f"| `{p.name}` | {p.stat().st_size:,} | {FORMATS[p.name][1] if p.name in FORMATS else ''} |"
                      for p in sorted(OUTPUT.iterdir()) if p.suffix == ".safetensors" and p.name in FORMATS)
    layer_rows = "\n".join(
        f"| `{l.component}.{l.path}` | `{kohya_name(l)}` | {tuple(l.down.shape)} | {tuple(l.up.shape)} | "
        f"{l.rank} | {l.alpha:g} |" for l in lora)
    tensor_rows = "\n".join(f"| `{k}` | {tuple(v.shape)} | {notes[k]} |" for k, v in tensors.items())
    with safe_open(str(OUTPUT / "peft.safetensors"), "pt") as f:
        peft_meta = json.loads(f.metadata()["lora_adapter_metadata"])
    meta_excerpt = json.dumps({k: peft_meta[k] for k in sorted(peft_meta)
                               if k.split(".", 1)[1] in ("r", "lora_alpha", "rank_pattern", "alpha_pattern")},
                              indent=2)
    text = f"""# LoRA fixtures

Written by `Tools/reference/make_lora_reference.py`; do not edit by hand, run the script again.
Produced with {versions}. Nothing was downloaded.

One random LoRA for the tiny SD fixture (`../tiny/`), written in the three layouts people download.
The three files hold **the same change** to the same {len(lora)} layers, so after fusing at the
same strength they give the same weights and the same picture (checked by the script).

| file | bytes | layout |
|---|---:|---|
{files}
| `reference.safetensors`, `reference.json` | | fused weights and pipeline runs (float32) |

## The rule

For a layer with weight W, a LoRA module holds `down` (r, in) and `up` (out, r) for a linear layer,
`down` (r, in, kh, kw) and `up` (out, r, 1, 1) for a convolution (1x1 or 3x3). Loaded at strength
s (diffusers: `fuse_lora(lora_scale=s)`, or `cross_attention_kwargs={{"scale": s}}` unfused):

    W' = W + s * (alpha / r) * up @ down
    conv: delta[o, i, y, x] = sum_k up[o, k, 0, 0] * down[k, i, y, x]

r is the module's rank (`down.shape[0]`), alpha its network alpha. Where alpha comes from:

* **(a) kohya** (`kohya.safetensors`): each module has its own `<name>.alpha`, a 0-d tensor (here
  float16, as sd-scripts saves it with fp16 precision; some files use a 1-element tensor). A file
  without `.alpha` keys means alpha = r. (In a file where only some modules lack one, sd-scripts
  gives those alpha = r, while diffusers gives them the most common alpha of the others.)
* **(b) PEFT** (`peft.safetensors`): the tensors carry no alpha. diffusers 0.42 reads it from the
  safetensors header: `__metadata__["lora_adapter_metadata"]` is a JSON string of the `LoraConfig`
  of each component, keys prefixed `unet.` and `text_encoder.`: `r` and `lora_alpha` for most
  modules, with `rank_pattern` / `alpha_pattern` (module name suffix -> value) for the others.
  `save_lora_weights` writes it only when given `unet_lora_adapter_metadata=...` (diffusers' own
  training scripts do, via `training_utils._collate_lora_metadata`). **Without that metadata
  diffusers takes alpha = r (factor 1) for every module** (`get_peft_kwargs`; the script checks
  this on the same tensors), which is also what PEFT files written by older diffusers mean. This
  file's metadata (relevant keys):

```json
{meta_excerpt}
```

* **(c) old diffusers** (`diffusers_old.safetensors`): no alpha anywhere: alpha = r. To hold the
  same change, this file's `up` tensors are the others' times alpha / r (0.5 or 2, exact in
  float16).

Here alpha / r is 0.5 for the UNet's linear layers and 1x1 convolutions (r 4, alpha 2), 2 for its
3x3 convolutions (r 2, alpha 4) and 0.5 for the text encoder (r 2, alpha 1). Every file is fused
at s = {LORA_SCALE}.

## Key names

**(a) kohya**: `lora_unet_` + the diffusers UNet module path with every `.` replaced by `_`, or
`lora_te_` + the transformers text encoder path (`text_model.encoder.layers.<i>...`) likewise;
then `.lora_down.weight`, `.lora_up.weight`, `.alpha`. Because `_` also occurs inside names
(`down_blocks`, `to_out`, `self_attn`...), going back is not a plain replace; diffusers
(`lora_conversion_utils._convert_non_diffusers_lora_to_diffusers`) replaces every `_` by `.` and
then repairs the known names: `down.blocks` -> `down_blocks`, `mid.block` -> `mid_block`,
`up.blocks` -> `up_blocks`, `transformer.blocks` -> `transformer_blocks`, `to.q/k/v` and
`to.out.0` -> `to_q/k/v`, `to_out.0`, `proj.in/out` -> `proj_in/out`, `time.emb.proj` ->
`time_emb_proj`, `conv.shortcut` -> `conv_shortcut` (`conv1`, `conv2`, `ff.net.0.proj`, `ff.net.2`,
`downsamplers.0.conv`, `upsamplers.0.conv` need nothing); for the text encoder `text.model` ->
`text_model`, `self.attn` -> `self_attn`, `q/k/v/out.proj` -> `q/k/v/out_proj`, and `mlp.fc1/fc2`
need nothing. A robust reader can instead match each kohya name against the model's own module
paths with `.` -> `_` (they are unique). Examples:

    lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q
        -> unet  down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q
    lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k
        -> unet  mid_block.attentions.0.transformer_blocks.0.attn2.to_k
    lora_unet_down_blocks_0_resnets_0_time_emb_proj -> unet  down_blocks.0.resnets.0.time_emb_proj
    lora_te_text_model_encoder_layers_0_self_attn_q_proj
        -> text_encoder  text_model.encoder.layers.0.self_attn.q_proj
    lora_te_text_model_encoder_layers_0_mlp_fc1 -> text_encoder  text_model.encoder.layers.0.mlp.fc1

sd-scripts builds SD 1.x on a UNet with diffusers' module names, so SD 1.x kohya files look like
these. (Its SDXL files use the original code's names instead, `lora_unet_input_blocks_...`,
`..._in_layers_2` and so on, which the same diffusers function also renames; not needed here.)

**(b) PEFT**: `unet.<diffusers path>.lora_A.weight` (= down) and `.lora_B.weight` (= up);
`text_encoder.<transformers path>.lora_A.weight` / `.lora_B.weight`. The transformers path
depends on the transformers version that wrote the file: transformers 5 flattened
`CLIPTextModel`, so this file (written with transformers 5) has `text_encoder.encoder.layers.0...`,
while files written with transformers 4 (most of those in circulation) have
`text_encoder.text_model.encoder.layers.0...`. diffusers 0.42 strips a leading `text_model.` when
the model has none; a reader should accept both. Also, training scripts that follow diffusers'
examples pass the state dict through `diffusers.utils.convert_state_dict_to_diffusers` before
saving, which renames only the attention projections: in the UNet `to_q.lora_A` ->
`to_q.lora.down` (also `to_k`, `to_v`, `to_out.0`; `lora_B` -> `lora.up`), in the text encoder
`q_proj.lora_A` -> `q_proj.lora_linear_layer.down` (also `k/v/out_proj`). Their files therefore mix
(b) and (c) names, and a reader should decide per key, not per file. (diffusers 0.42 itself
decides per file from the first UNet key: a file whose first key is a `lora_A` one and that also
holds `lora.down` keys loads without those layers, with only a PEFT warning about "additional
target modules".)

**(c) old diffusers**: `unet.<path>.lora.down.weight` / `.lora.up.weight` for every UNet layer
(attention, feed-forward, convolutions alike); `text_encoder.<path>.lora_linear_layer.down.weight`
/ `.up.weight` for the text encoder. (The even older attention-processor files,
`unet.<...>.attn1.processor.to_q_lora.down.weight`, are not covered.)

## The layers

| layer | kohya name | down | up | r | alpha |
|---|---|---|---|---:|---:|
{layer_rows}

Values: `down` and `up` of each layer are 0.5 N(0, 1) / sqrt(fan_in) (fan_in: the product of all
but the first dimension), drawn in the order of this table from `torch.Generator("cpu")` seeded
{LORA_SEED} (down then up), rounded to float16 values (values of `up` below 2^-12 set to 0, so
that `up` times 0.5 stays exact in float16 for layout (c)); so `up @ down` is about a quarter of the
size of the weight it changes before alpha / r and s. All other layers are untouched.

## Reference tensors (`reference.safetensors`, float32)

| tensor | shape | what |
|---|---|---|
{tensor_rows}

Text encoder weights are named as in the committed checkpoint
(`tiny/diffusers/text_encoder/model.safetensors`: `text_model.encoder.layers.0...`); transformers 5
calls the same parameters `encoder.layers.0...`.

The runs: `StableDiffusionPipeline.from_pretrained("tiny/diffusers")` in float32 (tokenizer rebuilt
from the package's BPE resource by `Tools/reference/tiny_pipeline.py`), then
`load_lora_weights(<file>)` and `fuse_lora(lora_scale={LORA_SCALE})` for the `lora.*` run; scheduler
`{RUN['scheduler']}` (DDIMScheduler from SD 1.5's scheduler config), prompt "{RUN['prompt']}",
negative prompt "{RUN['negative_prompt']}", guidance {RUN['guidance_scale']}, {RUN['height']}x{RUN['width']}
pixels, {RUN['num_inference_steps']} steps (timesteps 501, 1), seed {RUN['seed']} (`torch.Generator("cpu")`,
passed to the pipeline). `base.*` is the same run without the LoRA.

How much the LoRA changes the picture (values in [0, 1]): largest difference
{change['max_abs']:.3f}, mean {change['mean_abs']:.4f}, {change['fraction_above_0.01']:.0%} of the
values move by more than 0.01. Rounding the fused weights to float16 moves the picture by at most
{change['fp16_rounding_max_abs']:.1e}, so a test can tell a missing or wrong LoRA from rounding
even in float16.
"""
    (OUTPUT / "README.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
