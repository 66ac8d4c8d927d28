"""Stable Diffusion 1.x's three networks, built from configs with random weights.

Nothing is downloaded: the architecture comes from the configs below (the numbers in SD 1.5's
published config files) and the weights are random, drawn from a fixed seed. Random weights
are enough to test a re-implementation: if the Swift code computes the same function as
diffusers/transformers on the same weights, it will also do so on the trained ones.

Two sizes share one structure:
  * FULL: SD 1.5 exactly (UNet 860M, VAE 84M, text encoder 123M parameters);
  * TINY: the same blocks, the same number of levels, layers, heads and token ids, with very
    few channels, so the whole model is ~0.6M parameters and tests run in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelSize:
    """The numbers that differ between the full model and the tiny one."""

    name: str
    # UNet
    unet_channels: tuple[int, int, int, int]  # channels of the 4 resolution levels
    unet_norm_groups: int  # GroupNorm groups everywhere in the UNet
    unet_heads: int  # SD 1.x's config calls this "attention_head_dim" (see unet_config)
    # VAE
    vae_channels: tuple[int, int, int, int]
    vae_norm_groups: int
    # CLIP text encoder
    text_width: int  # also the UNet's cross_attention_dim
    text_layers: int
    text_heads: int
    text_mlp_width: int
    # Only written into the configs; the networks accept any size divisible by 8.
    image_size: int


FULL = ModelSize(
    name="full",
    unet_channels=(320, 640, 1280, 1280), unet_norm_groups=32, unet_heads=8,
    vae_channels=(128, 256, 512, 512), vae_norm_groups=32,
    text_width=768, text_layers=12, text_heads=12, text_mlp_width=3072,
    image_size=512,
)

# The tiny model keeps every structural number of SD 1.5 (4 levels, 2 resnets per down level
# and 3 per up level, attention at the 3 highest resolutions, 8 attention heads, 2 VAE resnets
# per level, a 77-token context and the full 49,408-token vocabulary) and shrinks the widths.
# Why these widths:
#   * The token embedding table alone is 49,408 x text_width numbers, so the text width
#     decides most of the file size: 4 keeps it at 0.8 MB in fp32.
#   * Every GroupNorm group keeps at least 2 channels and every attention head at least 2
#     dimensions, so a wrong grouping or head split still changes the output.
#   * GroupNorm uses 4 groups instead of 32 (32 groups would need 64+ channels). The original
#     (CompVis) code hard-codes 32 groups, so a loader of the tiny single-file checkpoint
#     must be told the group count; it is in the tiny diffusers configs and tiny_config.json.
#   * The VAE widths double once (8 -> 16) so that its resnets with a channel change
#     (shortcut convolutions) are exercised, as in the real 128 -> 256 -> 512 VAE.
TINY = ModelSize(
    name="tiny",
    unet_channels=(16, 16, 16, 16), unet_norm_groups=4, unet_heads=8,
    vae_channels=(8, 16, 16, 16), vae_norm_groups=4,
    text_width=4, text_layers=2, text_heads=2, text_mlp_width=16,
    image_size=64,
)

SIZES = {"full": FULL, "tiny": TINY}

VAE_SCALING_FACTOR = 0.18215  # latents = scaling * encoder mean; roughly unit variance for SD 1.x
CLIP_VOCAB_SIZE = 49408
CLIP_CONTEXT_LENGTH = 77

# SD 1.5's scheduler/scheduler_config.json. Written as published: keys it does not list (such
# as timestep_spacing) then take each scheduler class's own default when another scheduler is
# built with `from_config`, exactly as for users of the real model.
SD15_SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}


# MARK: - Configs, as the diffusers/transformers classes take them


def unet_config(size: ModelSize) -> dict:
    """UNet2DConditionModel arguments, as in SD 1.5's unet/config.json."""
    return dict(
        sample_size=size.image_size // 8,  # in latent pixels
        in_channels=4,
        out_channels=4,
        center_input_sample=False,
        flip_sin_to_cos=True,  # time embedding is [cos, sin], not [sin, cos]
        freq_shift=0,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=size.unet_channels,
        layers_per_block=2,
        downsample_padding=1,
        mid_block_scale_factor=1,
        act_fn="silu",
        norm_num_groups=size.unet_norm_groups,
        norm_eps=1e-5,
        cross_attention_dim=size.text_width,
        # A historical misnomer kept by SD 1.x's config: diffusers reads "attention_head_dim": 8
        # as 8 HEADS per attention layer (head size = channels / 8: 40, 80, 160 in SD 1.5).
        attention_head_dim=size.unet_heads,
    )


def vae_config(size: ModelSize) -> dict:
    """AutoencoderKL arguments, as in SD 1.5's vae/config.json."""
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=size.vae_channels,
        layers_per_block=2,
        act_fn="silu",
        latent_channels=4,
        norm_num_groups=size.vae_norm_groups,
        sample_size=size.image_size,
        scaling_factor=VAE_SCALING_FACTOR,
    )


def text_encoder_config(size: ModelSize) -> dict:
    """CLIPTextConfig arguments, as in SD 1.5's text_encoder/config.json (CLIP ViT-L/14's text half)."""
    return dict(
        vocab_size=CLIP_VOCAB_SIZE,
        max_position_embeddings=CLIP_CONTEXT_LENGTH,
        hidden_size=size.text_width,
        intermediate_size=size.text_mlp_width,
        num_hidden_layers=size.text_layers,
        num_attention_heads=size.text_heads,
        projection_dim=size.text_width,  # unused by CLIPTextModel
        hidden_act="quick_gelu",  # x * sigmoid(1.702 x), not the exact GELU
        layer_norm_eps=1e-5,
        attention_dropout=0.0,
        dropout=0.0,
        # SD 1.5's config carries these old placeholder ids. They only matter for the pooled
        # output (unused by Stable Diffusion); the real ids are 49406 / 49407.
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )


# MARK: - Random weights


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, (nn.GroupNorm, nn.LayerNorm))


def _random_values(module: nn.Module, name: str, shape: torch.Size, g: torch.Generator) -> torch.Tensor:
    """Values for one parameter.

    Nothing is left at a "neutral" value: PyTorch starts norms at weight 1 / bias 0 and many
    layers at bias 0, and a loader that mixed up two such tensors would go unnoticed. So norm
    weights are 1 + noise and every bias is small noise. Matrices and kernels get a standard
    deviation of 1/sqrt(fan_in), which keeps activations near unit scale through the network.
    """
    noise = torch.randn(shape, generator=g)
    if _is_norm(module):
        return 1.0 + 0.1 * noise if name == "weight" else 0.1 * noise
    if name == "bias":
        return 0.1 * noise
    if isinstance(module, nn.Embedding):
        return 0.5 * noise
    fan_in = shape[1:].numel() if len(shape) > 1 else 1
    return noise / fan_in**0.5


@torch.no_grad()
def randomize_weights(model: nn.Module, seed: int) -> None:
    """Overwrite every parameter with seeded random values, then round them to float16.

    Modules are visited in sorted name order so the values do not depend on construction
    order. Rounding to values a float16 can hold exactly means the fp16 checkpoint stores the
    very same numbers as the fp32 one, so one set of reference outputs serves both.
    """
    g = torch.Generator("cpu").manual_seed(seed)
    for _, module in sorted(model.named_modules(), key=lambda item: item[0]):
        for name, param in module.named_parameters(recurse=False):
            values = _random_values(module, name, param.shape, g)
            param.copy_(values.to(torch.float16).to(param.dtype))


# MARK: - Building the models


def build_unet(size: ModelSize, seed: int):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(**unet_config(size))
    randomize_weights(unet, seed)
    return unet.eval()


def build_vae(size: ModelSize, seed: int):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(**vae_config(size))
    randomize_weights(vae, seed)
    return vae.eval()


def build_text_encoder(size: ModelSize, seed: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    text_encoder = CLIPTextModel(CLIPTextConfig(**text_encoder_config(size)))
    randomize_weights(text_encoder, seed)
    return text_encoder.eval()


def build_models(size: ModelSize, seed: int = 0) -> dict:
    """The three networks; each gets its own seed so changing one leaves the others alone."""
    return {
        "unet": build_unet(size, seed + 1),
        "vae": build_vae(size, seed + 2),
        "text_encoder": build_text_encoder(size, seed + 3),
    }


# MARK: - The original (CompVis) config


def original_config_yaml(size: ModelSize) -> str:
    """An `ldm` inference config (like CompVis' v1-inference.yaml) for this size.

    The original code builds its networks from this file; diffusers' single-file loader can
    read it (`original_config=`) to learn the architecture of a CompVis-layout checkpoint.
    """
    model_channels = size.unet_channels[0]
    channel_mult = [c // model_channels for c in size.unet_channels]
    vae_ch = size.vae_channels[0]
    vae_mult = [c // vae_ch for c in size.vae_channels]
    size_note = ""
    if size != FULL:
        size_note = (
            f"# NOTE: this {size.name} model uses GroupNorm with {size.unet_norm_groups} groups (UNet) and\n"
            f"# {size.vae_norm_groups} groups (VAE), and a CLIP text encoder of width {size.text_width} with "
            f"{size.text_layers} layers\n# and {size.text_heads} heads. This format cannot say so (the original "
            "code hard-codes 32 groups and\n# loads CLIP ViT-L/14), so tell your loader explicitly.\n"
        )
    return f"""# Stable Diffusion 1.x inference config in the original CompVis `ldm` format ({size.name} size).
{size_note}model:
  base_learning_rate: 1.0e-04
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
    linear_start: 0.00085
    linear_end: 0.0120
    num_timesteps_cond: 1
    log_every_t: 200
    timesteps: 1000
    first_stage_key: "jpg"
    cond_stage_key: "txt"
    image_size: {size.image_size // 8}
    channels: 4
    cond_stage_trainable: false
    conditioning_key: crossattn
    monitor: val/loss_simple_ema
    scale_factor: {VAE_SCALING_FACTOR}
    use_ema: False

    unet_config:
      target: ldm.modules.diffusionmodules.openaimodel.UNetModel
      params:
        image_size: 32 # unused
        in_channels: 4
        out_channels: 4
        model_channels: {model_channels}
        attention_resolutions: [ 4, 2, 1 ]
        num_res_blocks: 2
        channel_mult: {channel_mult}
        num_heads: {size.unet_heads}
        use_spatial_transformer: True
        transformer_depth: 1
        context_dim: {size.text_width}
        use_checkpoint: True
        legacy: False

    first_stage_config:
      target: ldm.models.autoencoder.AutoencoderKL
      params:
        embed_dim: 4
        monitor: val/rec_loss
        ddconfig:
          double_z: true
          z_channels: 4
          resolution: 256
          in_channels: 3
          out_ch: 3
          ch: {vae_ch}
          ch_mult: {vae_mult}
          num_res_blocks: 2
          attn_resolutions: []
          dropout: 0.0
        lossconfig:
          target: torch.nn.Identity

    cond_stage_config:
      target: ldm.modules.encoders.modules.FrozenCLIPEmbedder
"""
