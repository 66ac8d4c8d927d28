"""The two ways Stable Diffusion 1.x weights are stored, and the map between their names.

1. The diffusers folder (what `StableDiffusionPipeline.from_pretrained` reads):

       model_index.json            which class each sub-folder holds
       unet/config.json            + diffusion_pytorch_model.safetensors
       vae/config.json             + diffusion_pytorch_model.safetensors
       text_encoder/config.json    + model.safetensors
       tokenizer/                  vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json
       scheduler/scheduler_config.json

2. The original single file (CompVis `ldm` code, e.g. "v1-5-pruned-emaonly.safetensors"): one
   state dict of the whole LatentDiffusion model, with the UNet under "model.diffusion_model.",
   the VAE under "first_stage_model.", the text encoder under
   "cond_stage_model.transformer.", and the training noise schedule as extra tensors.

The networks are the same; only the names (and the shape of 6 VAE attention matrices) differ.
The tables below give, for each diffusers name prefix, the original one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

# MARK: - UNet: diffusers name -> original name

UNET_PREFIX = "model.diffusion_model."

# Layers outside the blocks.
UNET_TOP_LEVEL = [
    ("time_embedding.linear_1.", "time_embed.0."),  # time_embed is Sequential(Linear, SiLU, Linear)
    ("time_embedding.linear_2.", "time_embed.2."),
    ("conv_in.", "input_blocks.0.0."),
    ("conv_norm_out.", "out.0."),  # out is Sequential(GroupNorm, SiLU, Conv2d)
    ("conv_out.", "out.2."),
]

# Inside a resnet block. The original keeps its layers in Sequentials:
# in_layers = (GroupNorm, SiLU, Conv), emb_layers = (SiLU, Linear), out_layers = (GroupNorm, SiLU, Dropout, Conv).
UNET_RESNET_PARTS = [
    ("norm1.", "in_layers.0."),
    ("conv1.", "in_layers.2."),
    ("time_emb_proj.", "emb_layers.1."),
    ("norm2.", "out_layers.0."),
    ("conv2.", "out_layers.3."),
    ("conv_shortcut.", "skip_connection."),  # 1x1 conv, only where the channel count changes
]
# Inside a transformer block (norm, proj_in, transformer_blocks.0.{attn1, attn2, ff, norm1-3},
# proj_out) both layouts use the same names. proj_in/proj_out are 1x1 convolutions in SD 1.x.


def unet_block_prefixes() -> list[tuple[str, str]]:
    """Where each diffusers block lives in the original UNet.

    The original UNet is three flat lists of blocks. input_blocks: [conv_in], then per level
    2 x [resnet, attention] and (except the last level) a downsampler. middle_block:
    [resnet, attention, resnet]. output_blocks: per level 3 x [resnet, attention], the last of
    the three also carrying the upsampler. Level 3 (lowest resolution) has no attention.
    """
    pairs = []
    for level in range(4):
        for j in range(2):
            block = 1 + 3 * level + j
            pairs.append((f"down_blocks.{level}.resnets.{j}.", f"input_blocks.{block}.0."))
            if level < 3:
                pairs.append((f"down_blocks.{level}.attentions.{j}.", f"input_blocks.{block}.1."))
        if level < 3:
            pairs.append((f"down_blocks.{level}.downsamplers.0.conv.", f"input_blocks.{3 + 3 * level}.0.op."))

    pairs += [
        ("mid_block.resnets.0.", "middle_block.0."),
        ("mid_block.attentions.0.", "middle_block.1."),
        ("mid_block.resnets.1.", "middle_block.2."),
    ]

    for level in range(4):  # up level 0 is the lowest resolution (no attention)
        for j in range(3):
            block = 3 * level + j
            pairs.append((f"up_blocks.{level}.resnets.{j}.", f"output_blocks.{block}.0."))
            if level > 0:
                pairs.append((f"up_blocks.{level}.attentions.{j}.", f"output_blocks.{block}.1."))
        if level < 3:
            # The upsampler comes after the block's resnet, and after its attention if it has one.
            position = 1 if level == 0 else 2
            pairs.append((f"up_blocks.{level}.upsamplers.0.", f"output_blocks.{3 * level + 2}.{position}."))
    return pairs


def unet_original_name(key: str) -> str:
    for ours, theirs in UNET_TOP_LEVEL:
        if key.startswith(ours):
            return UNET_PREFIX + theirs + key[len(ours):]
    for ours, theirs in unet_block_prefixes():
        if key.startswith(ours):
            rest = key[len(ours):]
            if ".resnets." in ours:
                rest = _rename_start(rest, UNET_RESNET_PARTS)
            return UNET_PREFIX + theirs + rest
    raise KeyError(f"no original name for UNet key {key}")


# MARK: - VAE: diffusers name -> original name

VAE_PREFIX = "first_stage_model."

VAE_TOP_LEVEL = [
    ("encoder.conv_norm_out.", "encoder.norm_out."),
    ("decoder.conv_norm_out.", "decoder.norm_out."),
    # conv_in, conv_out, quant_conv and post_quant_conv keep their names.
]

VAE_RESNET_PARTS = [("conv_shortcut.", "nin_shortcut.")]  # norm1, conv1, norm2, conv2 keep their names

# The VAE's single-head attention: the original uses 1x1 convolutions where diffusers uses Linear.
VAE_ATTENTION_PARTS = [
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
]


def vae_block_prefixes() -> list[tuple[str, str]]:
    """Where each diffusers block lives in the original VAE.

    The original decoder numbers its levels by resolution like the encoder (up.0 is the
    highest resolution) but runs them from up.3 to up.0, so diffusers' up_blocks.i is up.(3-i).
    """
    pairs = []
    for level in range(4):
        for j in range(2):
            pairs.append((f"encoder.down_blocks.{level}.resnets.{j}.", f"encoder.down.{level}.block.{j}."))
        if level < 3:
            pairs.append((f"encoder.down_blocks.{level}.downsamplers.0.", f"encoder.down.{level}.downsample."))
    for level in range(4):
        original_level = 3 - level
        for j in range(3):
            pairs.append((f"decoder.up_blocks.{level}.resnets.{j}.", f"decoder.up.{original_level}.block.{j}."))
        if level < 3:
            pairs.append((f"decoder.up_blocks.{level}.upsamplers.0.", f"decoder.up.{original_level}.upsample."))
    for part in ("encoder", "decoder"):
        pairs += [
            (f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1."),
            (f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1."),
            (f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2."),
        ]
    return pairs


def vae_original_name(key: str) -> str:
    for ours, theirs in VAE_TOP_LEVEL:
        if key.startswith(ours):
            return VAE_PREFIX + theirs + key[len(ours):]
    for ours, theirs in vae_block_prefixes():
        if key.startswith(ours):
            rest = key[len(ours):]
            if ".resnets." in ours:
                rest = _rename_start(rest, VAE_RESNET_PARTS)
            elif ".attentions." in ours:
                rest = _rename_start(rest, VAE_ATTENTION_PARTS)
            return VAE_PREFIX + theirs + rest
    return VAE_PREFIX + key  # conv_in, conv_out, quant_conv, post_quant_conv


def vae_is_attention_matrix(key: str) -> bool:
    """The 4 projection matrices per VAE attention, stored as (C, C) in diffusers, (C, C, 1, 1) originally."""
    return ".attentions." in key and key.endswith(".weight") and any(
        f".{p}weight" in key for p in ("to_q.", "to_k.", "to_v.", "to_out.0.")
    )


# MARK: - Text encoder: diffusers name -> original name

# The original wraps Hugging Face's CLIPTextModel in FrozenCLIPEmbedder as `.transformer`,
# so the names are transformers' own names under one more prefix.
TEXT_PREFIX = "cond_stage_model.transformer."
# A buffer the original files carry (transformers no longer saves it): int64 [[0, 1, ..., 76]].
POSITION_IDS_KEY = TEXT_PREFIX + "text_model.embeddings.position_ids"


def text_encoder_state_dict(text_encoder) -> dict[str, torch.Tensor]:
    """The text encoder's tensors under the names every SD 1.x file uses ("text_model.…").

    Recent transformers versions dropped the `text_model` wrapper from CLIPTextModel (their
    state dict says "embeddings.…"); they still read the old names, so we write the old ones.
    """
    state = text_encoder.state_dict()
    return {(k if k.startswith("text_model.") else "text_model." + k): v for k, v in state.items()}


def text_original_name(key: str) -> str:
    return TEXT_PREFIX + key


def _rename_start(rest: str, table: list[tuple[str, str]]) -> str:
    for ours, theirs in table:
        if rest.startswith(ours):
            return theirs + rest[len(ours):]
    return rest


# MARK: - The training noise schedule stored in original checkpoints


def ldm_schedule_buffers(num_timesteps: int = 1000, linear_start: float = 0.00085,
                         linear_end: float = 0.012) -> dict[str, torch.Tensor]:
    """The buffers of CompVis' DDPM.register_schedule for SD 1.x ("linear" schedule, eps prediction).

    Computed in float64 and stored as float32, as the original does. ("linear" in ldm is what
    diffusers calls "scaled_linear": linear in sqrt(beta).) diffusers computes its own
    schedule in float32, so its alphas_cumprod can differ from these in the last bits.
    """
    betas = torch.linspace(linear_start**0.5, linear_end**0.5, num_timesteps, dtype=torch.float64).numpy() ** 2
    alphas = 1.0 - betas
    alphas_cumprod = np.cumprod(alphas, axis=0)
    alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    buffers = {
        "betas": betas,
        "alphas_cumprod": alphas_cumprod,
        "alphas_cumprod_prev": alphas_cumprod_prev,
        "sqrt_alphas_cumprod": np.sqrt(alphas_cumprod),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alphas_cumprod),
        "log_one_minus_alphas_cumprod": np.log(1.0 - alphas_cumprod),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod - 1),
        "posterior_variance": posterior_variance,
        "posterior_log_variance_clipped": np.log(np.maximum(posterior_variance, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
        "posterior_mean_coef2": (1.0 - alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - alphas_cumprod),
    }
    return {name: torch.tensor(values, dtype=torch.float32) for name, values in buffers.items()}


# MARK: - Writing the single file


def original_state_dict(models: dict) -> dict[str, torch.Tensor]:
    """The whole model under original names: UNet, VAE, text encoder, schedule buffers."""
    state: dict[str, torch.Tensor] = {}

    def put(name: str, tensor: torch.Tensor) -> None:
        assert name not in state, f"two tensors map to {name}"
        state[name] = tensor.detach().contiguous()

    for key, tensor in models["unet"].state_dict().items():
        put(unet_original_name(key), tensor)
    for key, tensor in models["vae"].state_dict().items():
        if vae_is_attention_matrix(key):
            tensor = tensor[:, :, None, None]  # Linear (C, C) -> 1x1 conv (C, C, 1, 1)
        put(vae_original_name(key), tensor)
    for key, tensor in text_encoder_state_dict(models["text_encoder"]).items():
        put(text_original_name(key), tensor)
    context_length = models["text_encoder"].config.max_position_embeddings
    put(POSITION_IDS_KEY, torch.arange(context_length, dtype=torch.int64)[None, :])
    for name, tensor in ldm_schedule_buffers().items():
        put(name, tensor)
    return state


def cast_floats(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Cast floating-point tensors (weights and schedule buffers alike, as `model.half()` would);
    integer tensors such as position_ids stay int64."""
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}


def write_single_file(models: dict, path: Path, dtype: torch.dtype = torch.float32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(cast_floats(original_state_dict(models), dtype), path)


# MARK: - Writing the diffusers folder


def model_index() -> dict:
    import diffusers

    return {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        # SD 1.5 ships a safety checker here; a random-weight one would be meaningless.
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def write_diffusers_folder(models: dict, folder: Path, dtype: torch.dtype = torch.float32,
                           fp16_variant: bool = False, with_tokenizer_vocab: bool = True) -> None:
    """The diffusers layout, weights in `dtype`. With fp16_variant, also the "*.fp16.safetensors"
    files real repositories ship next to the float32 ones."""
    import diffusers

    from extract_bpe import write_hf_tokenizer_files
    from sd_models import SD15_SCHEDULER_CONFIG

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps(model_index(), indent=2) + "\n")
    for name in ("unet", "vae", "text_encoder"):
        models[name].save_pretrained(folder / name, safe_serialization=True)  # config.json + weights
    # Re-write the weights: in `dtype`, and the text encoder's under the classic "text_model." names.
    for stem, state in _component_weights(models).items():
        _save(cast_floats(state, dtype), folder / f"{stem}.safetensors")
        if fp16_variant:  # what `from_pretrained(..., variant="fp16")` reads
            _save(cast_floats(state, torch.float16), folder / f"{stem}.fp16.safetensors")
    if dtype != torch.float32:  # transformers records the weights' dtype in the config
        config_file = folder / "text_encoder" / "config.json"
        config = json.loads(config_file.read_text())
        config["dtype"] = str(dtype).removeprefix("torch.")
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    (folder / "scheduler").mkdir(exist_ok=True)
    scheduler_config = dict(SD15_SCHEDULER_CONFIG, _diffusers_version=diffusers.__version__)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler_config, indent=2) + "\n")

    write_hf_tokenizer_files(folder / "tokenizer")
    if not with_tokenizer_vocab:
        for big_file in ("vocab.json", "merges.txt"):
            (folder / "tokenizer" / big_file).unlink()


def _component_weights(models: dict) -> dict[str, dict[str, torch.Tensor]]:
    """Weights file of each network in the diffusers folder (path without extension) -> tensors."""
    return {
        "unet/diffusion_pytorch_model": models["unet"].state_dict(),
        "vae/diffusion_pytorch_model": models["vae"].state_dict(),
        "text_encoder/model": text_encoder_state_dict(models["text_encoder"]),
    }


def _save(state: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"format": "pt"})


# MARK: - Verification


def _compare_state(expected: dict, got: dict, what: str, ignore: tuple[str, ...] = ()) -> int:
    """Every tensor must be present on both sides with identical values (and no extras)."""
    expected = {k: v for k, v in expected.items() if k not in ignore}
    got = {k: v for k, v in got.items() if k not in ignore}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, f"{what}: missing {missing[:5]}, unexpected {extra[:5]}"
    for key, tensor in expected.items():
        other = got[key].to(tensor.dtype)
        assert other.shape == tensor.shape, f"{what}: {key} has shape {tuple(other.shape)}, expected {tuple(tensor.shape)}"
        assert torch.equal(other, tensor), f"{what}: {key} differs"
    return len(expected)


def check_mapping_is_one_to_one(models: dict) -> None:
    """Every diffusers tensor gets a distinct original name (original_state_dict asserts the rest)."""
    state = original_state_dict(models)
    n_model = sum(len(m.state_dict()) for m in models.values())
    assert len(state) == n_model + 1 + len(ldm_schedule_buffers()), "names collided"


def verify_with_single_file_loader(checkpoint: Path, diffusers_folder: Path, models: dict) -> int:
    """Load the single file with diffusers' own loader (configs from our diffusers folder)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_single_file(
        str(checkpoint), config=str(diffusers_folder), local_files_only=True,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    n = 0
    for name in ("unet", "vae", "text_encoder"):
        n += _compare_state(models[name].state_dict(), getattr(pipe, name).state_dict(), f"from_single_file {name}")
    return n


def verify_with_conversion_functions(checkpoint: Path, original_yaml: str, models: dict, norm_groups: dict) -> int:
    """Convert with diffusers' ldm->diffusers functions, taking the architecture from our yaml.

    The yaml cannot state GroupNorm's group count (the original code hard-codes 32), so the
    tiny model's count is passed in `norm_groups`.
    """
    import yaml
    from diffusers.loaders import single_file_utils as sfu
    from safetensors.torch import load_file

    state = load_file(str(checkpoint))
    original_config = yaml.safe_load(original_yaml)
    n = 0

    unet_config = sfu.create_unet_diffusers_config_from_ldm(original_config, state)
    _check_config_matches(unet_config, models["unet"].config, "unet")
    unet_state = sfu.convert_ldm_unet_checkpoint(state, unet_config)
    n += _compare_state(models["unet"].state_dict(), unet_state, "convert_ldm_unet_checkpoint")

    vae_config = sfu.create_vae_diffusers_config_from_ldm(original_config, state)
    _check_config_matches(vae_config, models["vae"].config, "vae")
    vae_state = sfu.convert_ldm_vae_checkpoint(state, vae_config)
    n += _compare_state(models["vae"].state_dict(), vae_state, "convert_ldm_vae_checkpoint")

    text_state = sfu.convert_ldm_clip_checkpoint(state)
    position_ids = text_state.pop("text_model.embeddings.position_ids")
    assert position_ids.dtype == torch.int64 and torch.equal(position_ids, torch.arange(77)[None])
    n += _compare_state(text_encoder_state_dict(models["text_encoder"]), text_state, "convert_ldm_clip_checkpoint")

    used = sum(k.startswith((UNET_PREFIX, VAE_PREFIX, TEXT_PREFIX)) for k in state)
    assert used + len(ldm_schedule_buffers()) == len(state), "checkpoint has keys no converter reads"
    for model_name, groups in norm_groups.items():
        assert models[model_name].config.norm_num_groups == groups
    return n


def _check_config_matches(converted: dict, ours, what: str) -> None:
    """The architecture diffusers reads from our yaml must be the one we built."""
    for key in ("block_out_channels", "layers_per_block", "down_block_types", "up_block_types",
                "cross_attention_dim", "attention_head_dim", "in_channels", "out_channels",
                "latent_channels", "scaling_factor"):
        if key in converted and hasattr(ours, key):
            a, b = converted[key], getattr(ours, key)
            if isinstance(a, (list, tuple)):
                a, b = list(a), list(b)
            assert a == b, f"{what} config from yaml: {key} = {a}, model has {b}"


def verify_diffusers_folder(folder: Path, models: dict, variant: str | None = None) -> int:
    """Load the folder with StableDiffusionPipeline.from_pretrained and compare every tensor."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True, variant=variant)
    n = 0
    for name in ("unet", "vae", "text_encoder"):
        n += _compare_state(models[name].state_dict(), getattr(pipe, name).state_dict(), f"from_pretrained {name}")
    return n
