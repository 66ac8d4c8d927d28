#!/usr/bin/env python3
"""Reference gradients for the Swift backward pass: the tiny UNet's training loss under autograd.

The tiny fixture UNet (Tests/StableDiffusionTests/Fixtures/tiny/diffusers/unet, loaded in float32)
takes one step of Stable Diffusion's training objective:

    x_t  = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps       DDPMScheduler.add_noise, scaled-linear betas
    loss = mean((unet(x_t, t, context) - eps)^2)

with x0, eps and the context drawn from torch.Generator seeds, and timesteps (300, 700), one per
sample. loss.backward() gives the gradient of every parameter. Storing them all would take more
room than the model, so for each parameter the script records three fingerprints that a wrong
gradient cannot match by accident:

  * its length, sqrt(sum g^2);
  * its dot product with the fixed vector r_i = sin(0.7 i + 0.3) over the flat index i;
  * its first four numbers.

Usage (from the repository root, in a Python environment with torch and diffusers):

    python Tools/reference/make_gradient_reference.py

It writes Tests/StableDiffusionTests/Fixtures/reference/unet_gradients.json (about 190 KB), and
the same fingerprints for the other two networks of the tiny model:

  * text_encoder_gradients.json: transformers' CLIPTextModel (tiny/diffusers/text_encoder) on the
    token ids of "a photograph of an astronaut riding a horse" and "", with the loss
    sum(w * last_hidden_state) for w drawn from seed 22;
  * vae_gradients.json: diffusers' AutoencoderKL (tiny/diffusers/vae) on a (1, 3, 32, 32) image
    in [-1, 1] from seed 23, with the latent sampled as mean + std * eps (eps from the same
    generator) and the loss mean(|decode(z) - image|) + kl, kl the posterior's KL from N(0, 1)
    summed over the latent (diffusers' DiagonalGaussianDistribution.kl()) for the batch of one.
"""
import json
import math
import pathlib

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests/StableDiffusionTests/Fixtures"
OUT = FIXTURES / "reference/unet_gradients.json"


def fingerprint(gradient):
    flat = gradient.detach().double().flatten()
    r = torch.sin(0.7 * torch.arange(flat.numel(), dtype=torch.float64) + 0.3)
    return {"shape": list(gradient.shape), "norm": float(flat.norm()), "dot": float((flat * r).sum()),
            "head": [float(v) for v in flat[:4]]}


def unet_reference():
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_pretrained(FIXTURES / "tiny/diffusers/unet", torch_dtype=torch.float32)
    unet.train()
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    generator = torch.Generator().manual_seed(21)
    latents = torch.randn(2, 4, 8, 8, generator=generator)
    noise = torch.randn(2, 4, 8, 8, generator=generator)
    context = torch.randn(2, 77, unet.config.cross_attention_dim, generator=generator)
    timesteps = torch.tensor([300, 700])
    noisy = scheduler.add_noise(latents, noise, timesteps)
    prediction = unet(noisy, timesteps, encoder_hidden_states=context).sample
    loss = torch.nn.functional.mse_loss(prediction, noise)
    loss.backward()
    record = {
        "timesteps": timesteps.tolist(),
        "latents": latents.flatten().tolist(), "noise": noise.flatten().tolist(), "context": context.flatten().tolist(),
        "loss": float(loss.detach()),
        "gradients": {name: fingerprint(p.grad) for name, p in unet.named_parameters()},
    }
    write(OUT, record)


def text_encoder_reference():
    model = CLIPTextModel.from_pretrained(FIXTURES / "tiny/diffusers/text_encoder", torch_dtype=torch.float32)
    model.train()
    prompts = json.loads((FIXTURES / "reference/tokens.json").read_text())["prompts"]
    plain = next(p["ids"] for p in prompts if p["prompt"] == "a photograph of an astronaut riding a horse")
    empty = [49406] + [49407] * 76                    # "": <start>, then <end> as padding
    ids = torch.tensor([plain, empty])
    output = model(ids).last_hidden_state
    weights = torch.randn(output.shape, generator=torch.Generator().manual_seed(22))
    loss = (output * weights).sum()
    loss.backward()
    write(FIXTURES / "reference/text_encoder_gradients.json", {
        "ids": ids.tolist(), "weights": weights.flatten().tolist(), "loss": float(loss.detach()),
        "gradients": {name: fingerprint(p.grad) for name, p in model.named_parameters() if p.grad is not None},
    })


def vae_reference():
    vae = AutoencoderKL.from_pretrained(FIXTURES / "tiny/diffusers/vae", torch_dtype=torch.float32)
    vae.train()
    generator = torch.Generator().manual_seed(23)
    image = torch.rand(1, 3, 32, 32, generator=generator) * 2 - 1
    posterior = vae.encode(image).latent_dist
    eps = torch.randn(posterior.mean.shape, generator=generator)
    z = posterior.mean + posterior.std * eps
    reconstruction = vae.decode(z).sample
    kl = posterior.kl().mean()
    loss = (reconstruction - image).abs().mean() + kl
    loss.backward()
    write(FIXTURES / "reference/vae_gradients.json", {
        "image": image.flatten().tolist(), "noise": eps.flatten().tolist(), "loss": float(loss.detach()),
        "kl": float(kl.detach()),
        "gradients": {name: fingerprint(p.grad) for name, p in vae.named_parameters() if p.grad is not None},
    })


def write(path, record):
    path.write_text(json.dumps(record) + "\n")
    print(f"wrote {path.relative_to(ROOT)}: loss {record['loss']:.6f}, {len(record['gradients'])} parameters")


if __name__ == "__main__":
    unet_reference()
    text_encoder_reference()
    vae_reference()
