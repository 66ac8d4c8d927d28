#!/usr/bin/env python3
"""Reference data for TAESD, the tiny autoencoder, made with diffusers' AutoencoderTiny.

TAESD is a small stand-in for Stable Diffusion's VAE: a plain stack of 3x3 convolutions and ReLUs
that encodes a picture to the same 4-channel latents (already at the UNet's scale) and decodes
them back, some hundred times cheaper than the real VAE. Its authors publish it in two layouts:

  * the diffusers folder (config.json + diffusion_pytorch_model.safetensors), read by
    `AutoencoderTiny.from_pretrained`; keys `encoder.layers.N...` and `decoder.layers.N...`;
  * their own two files, taesd_encoder.safetensors and taesd_decoder.safetensors, each the state
    dict of one `nn.Sequential`, so the keys are the layer indices: `0.weight`, `1.conv.0.weight`...

This script builds the SD 1.x TAESD's exact structure with 4 channels instead of 64 and seeded
random weights, writes it in both layouts, re-implements the authors' `nn.Sequential` modules
(`AuthorsEncoder` / `AuthorsDecoder` below) and requires them, loaded from the authors' files, to
compute exactly what diffusers computes. Then it records:

  * the decoder's output for a seeded latent and the encoder's output for a seeded picture;
  * a 2-step StableDiffusionPipeline run of the tiny SD fixture with this autoencoder as its VAE.

Usage (from the repository root, in the reference venv; nothing is downloaded):

    python Tools/reference/make_taesd_reference.py              # the fixtures
    python Tools/reference/make_taesd_reference.py --full DIR   # also a full-size (64-channel)
                                                                # random TAESD, outside the repo

It writes Tests/StableDiffusionTests/Fixtures/taesd/ (described in the README.md it writes there).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference_data as ref  # noqa: E402
import sd_models  # noqa: E402
import tiny_pipeline  # noqa: E402

OUTPUT = tiny_pipeline.FIXTURES / "taesd"

# The SD 1.x TAESD: four stages of (1, 3, 3, 3) blocks in the encoder and (3, 3, 3, 1) in the
# decoder, all of one width, 2x nearest upsampling between decoder stages (3 times: 8x overall).
# Only the width differs from the published model (64). 4 channels keep each layout of the
# tiny one near 15-30 KB (with 8 they would be three times that); the structure, and so every
# key, is the same at any width.
TINY_WIDTH = 4
FULL_WIDTH = 64
WEIGHTS_SEED = 4  # the tiny SD's UNet, VAE and text encoder use seeds 1, 2 and 3


def taesd_config(width: int) -> dict:
    """AutoencoderTiny arguments, as in the published SD 1.x TAESD's config.json (width aside)."""
    return dict(
        in_channels=3,
        out_channels=3,
        encoder_block_out_channels=(width,) * 4,
        decoder_block_out_channels=(width,) * 4,
        act_fn="relu",
        upsample_fn="nearest",
        latent_channels=4,
        upsampling_scaling_factor=2,
        num_encoder_blocks=(1, 3, 3, 3),
        num_decoder_blocks=(3, 3, 3, 1),
        latent_magnitude=3,
        latent_shift=0.5,
        scaling_factor=1.0,
    )


@torch.no_grad()
def build_taesd(width: int, seed: int = WEIGHTS_SEED):
    """An AutoencoderTiny with the tiny SD's random initialisation (sd_models.randomize_weights:
    kernels N(0, 1/fan_in), biases 0.1 N(0, 1), all float16-exact), except the decoder's last
    convolution: a trained TAESD decoder ends in pictures in [0, 1], so that layer gets half the
    usual weights and a bias around 0.5. Without this, random weights put most pixels outside
    [0, 1], and a clamped pixel cannot tell a right decoder from a wrong one."""
    from diffusers import AutoencoderTiny

    vae = AutoencoderTiny(**taesd_config(width))
    sd_models.randomize_weights(vae, seed)
    last = vae.decoder.layers[-1]
    last.weight.mul_(0.5)  # exact: halving a float16 value
    last.bias.copy_((last.bias + 0.5).to(torch.float16).float())
    return vae.eval()


# MARK: - The authors' layout


class Clamp(nn.Module):
    """Index 0 of the authors' decoder: a soft clamp of the latents to (-3, 3)."""

    def forward(self, x):
        return torch.tanh(x / 3) * 3


def conv3x3(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Block(nn.Module):
    """ReLU(conv(x) + skip(x)), conv = 3x3 conv, ReLU, 3x3 conv, ReLU, 3x3 conv (keys conv.0,
    conv.2, conv.4: the ReLUs have no weights but take indices 1 and 3). skip is a 1x1 convolution
    without bias only when the channel count changes, which it never does in SD's TAESD: the
    published files have no `skip` keys."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.conv = nn.Sequential(conv3x3(n_in, n_out), nn.ReLU(), conv3x3(n_out, n_out), nn.ReLU(),
                                  conv3x3(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x):
        return self.fuse(self.conv(x) + self.skip(x))


def authors_encoder(width: int, latent_channels: int = 4) -> nn.Sequential:
    """Picture in [0, 1] -> latents. 15 layers: conv, block, then three times a stride-2 conv
    without bias and 3 blocks, then the conv to the latent channels."""
    layers = [conv3x3(3, width), Block(width, width)]
    for _ in range(3):
        layers += [conv3x3(width, width, stride=2, bias=False)] + [Block(width, width) for _ in range(3)]
    layers.append(conv3x3(width, latent_channels))
    return nn.Sequential(*layers)


def authors_decoder(width: int, latent_channels: int = 4) -> nn.Sequential:
    """Latents -> picture in (about) [0, 1]. 20 layers: Clamp, conv, ReLU, then three times 3 blocks,
    2x nearest upsampling and a conv without bias, then one block and the conv to RGB."""
    layers = [Clamp(), conv3x3(latent_channels, width), nn.ReLU()]
    for _ in range(3):
        layers += [Block(width, width) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2), conv3x3(width, width, bias=False)]
    layers += [Block(width, width), conv3x3(width, 3)]
    return nn.Sequential(*layers)


def authors_key(diffusers_key: str) -> tuple[str, str]:
    """diffusers key -> (which authors' file, key in it).

    The encoder's layers have the same indices in both layouts. diffusers' decoder does the clamp
    in its forward(), not as a layer, so every decoder index is one less than the authors'."""
    part, _, index, rest = diffusers_key.split(".", 3)  # "decoder", "layers", "N", "..."
    offset = 1 if part == "decoder" else 0
    return part, f"{int(index) + offset}.{rest}"


def authors_state_dicts(vae, dtype: torch.dtype) -> dict[str, dict[str, torch.Tensor]]:
    out: dict[str, dict[str, torch.Tensor]] = {"encoder": {}, "decoder": {}}
    for key, tensor in vae.state_dict().items():
        part, key_there = authors_key(key)
        out[part][key_there] = tensor.detach().to(dtype).contiguous()
    return out


def write_both_layouts(vae, folder: Path, dtype: torch.dtype) -> dict[str, Path]:
    """diffusers/ (save_pretrained) and taesd_encoder / taesd_decoder .safetensors."""
    import copy

    diffusers_dir = folder / "diffusers"
    if diffusers_dir.exists():
        shutil.rmtree(diffusers_dir)
    copy.deepcopy(vae).to(dtype).save_pretrained(str(diffusers_dir))
    files = {"diffusers": diffusers_dir}
    for part, state in authors_state_dicts(vae, dtype).items():
        path = folder / f"taesd_{part}.safetensors"
        save_file(state, str(path), metadata={"format": "pt"})
        files[part] = path
    return files


@torch.no_grad()
def verify_layouts(vae, files: dict[str, Path], width: int) -> None:
    """Both layouts load back to the same numbers, and the authors' modules compute what diffusers'
    AutoencoderTiny computes, to the last bit:

        diffusers encode(x) = authors_encoder((x + 1) / 2)     x: picture in [-1, 1]
        diffusers decode(z) = authors_decoder(z) * 2 - 1       z: latents at the UNet's scale
    """
    from diffusers import AutoencoderTiny

    reloaded = AutoencoderTiny.from_pretrained(str(files["diffusers"]), torch_dtype=torch.float32).eval()
    for key, tensor in vae.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], tensor), key

    encoder, decoder = authors_encoder(width).eval(), authors_decoder(width).eval()
    # strict loading: every key of the files is a parameter of our modules and vice versa
    encoder.load_state_dict({k: v.float() for k, v in load_file(str(files["encoder"])).items()}, strict=True)
    decoder.load_state_dict({k: v.float() for k, v in load_file(str(files["decoder"])).items()}, strict=True)

    g = tiny_pipeline.generator(123)
    picture = torch.rand((2, 3, 48, 64), generator=g) * 2 - 1
    latents = 2 * torch.randn((2, 4, 6, 8), generator=g)  # some beyond the clamp's knee
    assert torch.equal(reloaded.encode(picture).latents, encoder(picture.add(1).div(2)))
    assert torch.equal(reloaded.decode(latents).sample, decoder(latents).mul(2).sub(1))
    print(f"  verified: AutoencoderTiny.from_pretrained(diffusers/) has the same {len(vae.state_dict())} tensors; "
          "the authors' layout in our nn.Sequential computes exactly diffusers' encode and decode")


# MARK: - Reference tensors


DECODE_SEED, ENCODE_SEED = 10, 11
LATENT_SHAPE = (1, 4, 8, 8)
IMAGE_SHAPE = (1, 3, 64, 64)

PIPELINE = tiny_pipeline.TWO_STEP_RUN


@torch.no_grad()
def codec_tensors(vae) -> tuple[dict, dict]:
    """Decoder output for a seeded latent, encoder output for a seeded picture."""
    latents = torch.randn(LATENT_SHAPE, generator=tiny_pipeline.generator(DECODE_SEED))
    # Uniform noise as the picture, rounded to float16 values so it can be stored in float16 (the
    # largest input, halved) and still be exactly what went in.
    picture = (torch.rand(IMAGE_SHAPE, generator=tiny_pipeline.generator(ENCODE_SEED)) * 2 - 1).half().float()
    decoded = vae.decode(latents).sample
    encoded = vae.encode(picture).latents
    tensors = {
        "decode.latents": latents,
        "decode.image": decoded,
        "encode.image": picture.half(),
        "encode.latents": encoded,
    }
    notes = {
        "decode.latents": f"torch.randn({LATENT_SHAPE}) with seed {DECODE_SEED}: latents at the UNet's scale",
        "decode.image": "AutoencoderTiny.decode(decode.latents).sample: the picture in [-1, 1], not clamped",
        "encode.image": f"torch.rand({IMAGE_SHAPE}) * 2 - 1 with seed {ENCODE_SEED}, rounded to float16 and "
                        "stored as float16 (exact): a picture in [-1, 1]",
        "encode.latents": "AutoencoderTiny.encode(encode.image).latents: latents at the UNet's scale "
                          "(diffusers' pipelines multiply them by scaling_factor = 1.0)",
    }
    return tensors, notes


@torch.no_grad()
def pipeline_run(vae) -> tuple[dict, dict, dict]:
    """The tiny SD fixture with this autoencoder as its VAE, as a user would set it up:
    StableDiffusionPipeline.from_pretrained(tiny folder, vae=AutoencoderTiny...)."""
    scheduler = ref.make_scheduler(PIPELINE["scheduler"])
    pipe = tiny_pipeline.load(scheduler=scheduler, vae=vae)
    image, latents_after = tiny_pipeline.run_recording_latents(pipe, PIPELINE)
    timesteps = [int(t) for t in pipe.scheduler.timesteps]

    # The autoencoder only decodes: the latents must be those of the same run with the KL VAE.
    plain = tiny_pipeline.load(scheduler=ref.make_scheduler(PIPELINE["scheduler"]))
    plain_latents = plain(**{k: PIPELINE[k] for k in tiny_pipeline.RUN_SETTINGS},
                          generator=tiny_pipeline.generator(PIPELINE["seed"]), output_type="latent").images
    assert torch.equal(plain_latents, latents_after[-1])
    # And decoding is TAESD's: clamp(decode(latents / 1.0) / 2 + 0.5, 0, 1), channels last.
    by_hand = (vae.decode(latents_after[-1] / vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)
    assert torch.equal(by_hand.permute(0, 2, 3, 1), image)

    tensors = {f"txt2img.step{k}.latents": latents for k, latents in enumerate(latents_after)}
    tensors["txt2img.image"] = image
    notes = {f"txt2img.step{k}.latents": f"latents after step {k} (timestep {t})" for k, t in enumerate(timesteps)}
    notes[f"txt2img.step{len(timesteps) - 1}.latents"] += ": the latents decoded"
    notes["txt2img.image"] = ("pipeline output (output_type='np'), NHWC (1, 64, 64, 3), float32: "
                              "clamp(AutoencoderTiny.decode(latents / 1.0) / 2 + 0.5, 0, 1)")
    settings = {**PIPELINE, "timesteps": timesteps,
                "generator": "torch.Generator('cpu').manual_seed(seed), passed to the pipeline",
                "vae": "taesd/diffusers (AutoencoderTiny), loaded in float32"}
    return tensors, notes, settings


def values_clamped(image: torch.Tensor) -> str:
    """How many of the picture's values the final clamp to [0, 1] decided (a wrong decoder can hide there)."""
    return f"{int(((image == 0) | (image == 1)).sum())} of its {image.numel():,} values are"


# MARK: - Writing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", type=Path, metavar="DIR",
                        help="also write a full-size (64-channel) random TAESD in both layouts here")
    args = parser.parse_args()
    tiny_pipeline.quiet_libraries()
    torch.set_grad_enabled(False)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in tiny_pipeline.versions().items()))

    make_fixtures(OUTPUT)
    if args.full:
        make_full(args.full)


def make_fixtures(folder: Path) -> None:
    print(f"\n== tiny TAESD (width {TINY_WIDTH}) -> {tiny_pipeline.shown(folder)}")
    folder.mkdir(parents=True, exist_ok=True)
    vae = build_taesd(TINY_WIDTH)
    print(f"  {sum(p.numel() for p in vae.parameters()):,} parameters")
    files = write_both_layouts(vae, folder, torch.float16)
    # Check the float16 files themselves: the weights are float16-exact, so nothing was lost.
    verify_layouts(vae, files, TINY_WIDTH)

    tensors, notes = codec_tensors(vae)
    run_tensors, run_notes, settings = pipeline_run(vae)
    tensors.update(run_tensors)
    notes.update(run_notes)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "reference.safetensors"),
              metadata={"format": "pt"})
    clamped = values_clamped(run_tensors["txt2img.image"])
    print(f"  pipeline run: timesteps {settings['timesteps']}; {clamped} clamped to 0 or 1")
    data = {
        "description": "Reference data of the tiny TAESD (taesd/diffusers, taesd_encoder/decoder.safetensors): "
                       "tensors in reference.safetensors, described in README.md.",
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in taesd_config(TINY_WIDTH).items()},
        "weights_seed": WEIGHTS_SEED,
        "decode": {"seed": DECODE_SEED, "shape": list(LATENT_SHAPE)},
        "encode": {"seed": ENCODE_SEED, "shape": list(IMAGE_SHAPE)},
        "pipeline": settings,
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""), "what": notes[k]}
                    for k, v in tensors.items()},
    }
    ref.write_json(folder / "reference.json", data)
    write_readme(folder, vae, tensors, notes, settings, clamped)
    tiny_pipeline.print_sizes(folder)


def make_full(out: Path) -> None:
    """The published model's size, random weights, float32, for measuring speed (not for the repo)."""
    print(f"\n== full-size TAESD (width {FULL_WIDTH}) -> {out}")
    out.mkdir(parents=True, exist_ok=True)
    vae = build_taesd(FULL_WIDTH)
    print(f"  {sum(p.numel() for p in vae.parameters()):,} parameters")
    files = write_both_layouts(vae, out, torch.float32)
    verify_layouts(vae, files, FULL_WIDTH)
    tiny_pipeline.print_sizes(out)




# MARK: - README


def key_table(vae) -> str:
    """One row per layer: diffusers' prefix, the authors' file and index, what the layer is."""
    rows = []
    for part in ("encoder", "decoder"):
        layers = getattr(vae, part).layers
        if part == "decoder":
            rows.append(("(done in `DecoderTiny.forward`)", "`taesd_decoder` `0`", "Clamp: tanh(z / 3) * 3, no weights"))
        for i, layer in enumerate(layers):
            _, theirs = authors_key(f"{part}.layers.{i}.x")
            theirs = theirs.rsplit(".", 1)[0]
            if isinstance(layer, nn.Conv2d):
                stride = ", stride 2" if layer.stride[0] == 2 else ""
                bias = "" if layer.bias is not None else ", no bias"
                what = f"conv {layer.kernel_size[0]}x{layer.kernel_size[1]} {layer.in_channels}->{layer.out_channels}{stride}{bias}"
            elif isinstance(layer, nn.ReLU):
                what = "ReLU, no weights"
            elif isinstance(layer, nn.Upsample):
                what = "2x nearest upsampling, no weights"
            else:
                what = "block: `conv.0`, `conv.2`, `conv.4` (3x3 with bias), identity skip"
            rows.append((f"`{part}.layers.{i}`", f"`taesd_{part}` `{theirs}`", what))
    lines = ["| diffusers (`diffusers/diffusion_pytorch_model.safetensors`) | authors' file and key prefix | layer |",
             "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def write_readme(folder: Path, vae, tensors: dict, notes: dict, settings: dict, clamped: str) -> None:
    versions = ", ".join(f"{k} {v}" for k, v in tiny_pipeline.versions().items())
    sizes = "\n".join(f"| `{p.relative_to(folder)}` | {p.stat().st_size:,} |"
                      for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "README.md")
    tensor_rows = "\n".join(f"| `{k}` | {tuple(v.shape)} | {str(v.dtype).replace('torch.', '')} | {notes[k]} |"
                            for k, v in tensors.items())
    n_params = sum(p.numel() for p in vae.parameters())
    text = f"""# TAESD fixtures

Written by `Tools/reference/make_taesd_reference.py`; do not edit by hand, run the script again.
Produced with {versions}. Nothing was downloaded.

TAESD is the tiny autoencoder that stands in for Stable Diffusion's VAE (diffusers:
`AutoencoderTiny`). These files hold a TAESD with the SD 1.x model's exact structure (encoder
blocks (1, 3, 3, 3), decoder blocks (3, 3, 3, 1), 3 upsamplings, 4 latent channels,
`latent_magnitude` 3, `latent_shift` 0.5, `scaling_factor` 1.0) but {TINY_WIDTH} channels instead of
{FULL_WIDTH}: {n_params:,} parameters. The weights are seeded random values (seed {WEIGHTS_SEED},
`sd_models.randomize_weights`: kernels N(0, 1/fan_in), biases 0.1 N(0, 1)), except that the
decoder's last convolution has half those weights and its biases are centred on 0.5, so that the
decoded pictures fall mostly inside [0, 1] as a trained decoder's do. All weights are
float16-exact, and every file stores them in **float16**.

| file | bytes |
|---|---:|
{sizes}

* `diffusers/`: `AutoencoderTiny.save_pretrained` (config.json + diffusion_pytorch_model.safetensors,
  float16); load with `AutoencoderTiny.from_pretrained`.
* `taesd_encoder.safetensors`, `taesd_decoder.safetensors`: the same weights in the layout the
  TAESD authors publish: each file is the state dict of one `nn.Sequential`, so its keys are layer
  indices (`0.weight`, `1.conv.0.weight`, ...). The script re-implements those modules
  (`authors_encoder`, `authors_decoder`), loads these files into them with strict key checking,
  and requires them to compute bit for bit what diffusers' `AutoencoderTiny` computes.
* `reference.safetensors` (+ `reference.json`, the same description in JSON): inputs and outputs.

## Key mapping

Encoder: the authors' index N is diffusers' `encoder.layers.N`. Decoder: the authors' index N is
diffusers' `decoder.layers.(N - 1)`, because the authors' decoder starts with a weightless clamp
module at index 0 that diffusers applies inside `DecoderTiny.forward` instead. The rest of a key is
the same in both layouts (`weight`, `bias`, `conv.0.weight`, `conv.0.bias`, `conv.2.*`, `conv.4.*`).
A block is `ReLU(conv(x) + skip(x))` with `conv` = 3x3 conv, ReLU, 3x3 conv, ReLU, 3x3 conv (the
ReLUs take indices 1 and 3 but hold no weights). The authors' block has a 1x1 convolution without
bias as `skip` when its input and output channels differ; in SD's TAESD every block keeps its
width, so `skip` is the identity and **no file has a `skip` key**. All convolutions pad by 1.

{key_table(vae)}

## Scaling

    diffusers  AutoencoderTiny.encode(x).latents = authors_encoder((x + 1) / 2)    x in [-1, 1]
    diffusers  AutoencoderTiny.decode(z).sample  = authors_decoder(z) * 2 - 1      z latents
    authors    authors_decoder(z) = layers(tanh(z / 3) * 3)                       picture in ~[0, 1]

(each checked to be bit-identical). The latents are those the UNet sees: TAESD works on SD's
*scaled* latents (the KL VAE's latents times 0.18215), and AutoencoderTiny's
`scaling_factor` is 1.0, so diffusers' pipelines divide by 1.0 before decoding and multiply by 1.0
after encoding. `latent_magnitude` (3) and `latent_shift` (0.5) are not used by `encode` or
`decode`: they only map latents to bytes and back (`scale_latents`: z / 6 + 0.5 clamped to [0, 1];
`unscale_latents`: (b - 0.5) * 6), as `AutoencoderTiny.forward` does to round-trip through uint8.

A pipeline's picture is `clamp(decode(latents / 1.0) / 2 + 0.5, 0, 1)`, which is the authors'
`clamp(authors_decoder(latents), 0, 1)` up to float32 rounding of the `* 2 - 1` and `/ 2 + 0.5`.

## Reference tensors (`reference.safetensors`)

| tensor | shape | dtype | what |
|---|---|---|---|
{tensor_rows}

The pipeline run: `StableDiffusionPipeline.from_pretrained("tiny/diffusers", vae=<this
AutoencoderTiny in float32>)` (the tiny SD fixture; its tokenizer is rebuilt from the package's BPE
resource by `Tools/reference/tiny_pipeline.py`), scheduler `{settings['scheduler']}` (DDIMScheduler
from SD 1.5's scheduler config, timesteps {settings['timesteps']}), prompt "{settings['prompt']}",
negative prompt "{settings['negative_prompt']}", guidance {settings['guidance_scale']},
{settings['height']}x{settings['width']} pixels, {settings['num_inference_steps']} steps, seed {settings['seed']}
(`torch.Generator("cpu")`, passed to the pipeline). The script checks that the latents are those of
the same run with the tiny model's own VAE (the autoencoder only decodes) and that the picture is
the formula above. {clamped} clamped to exactly 0 or 1.

## Full size

`python Tools/reference/make_taesd_reference.py --full DIR` also writes a random TAESD of the
published size ({FULL_WIDTH} channels, 2.4 M parameters) in both layouts, float32, into DIR (outside
the repository), for speed measurements.
"""
    (folder / "README.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
