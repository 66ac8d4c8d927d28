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

It writes Tests/StableDiffusionTests/Fixtures/reference/unet_gradients.json (about 60 KB).
"""
import json
import math
import pathlib

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests/StableDiffusionTests/Fixtures"
OUT = FIXTURES / "reference/unet_gradients.json"


def fingerprint(gradient):
    flat = gradient.detach().double().flatten()
    r = torch.sin(0.7 * torch.arange(flat.numel(), dtype=torch.float64) + 0.3)
    return {"shape": list(gradient.shape), "norm": float(flat.norm()), "dot": float((flat * r).sum()),
            "head": [float(v) for v in flat[:4]]}


def main():
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
    OUT.write_text(json.dumps(record) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: loss {float(loss):.6f}, {len(record['gradients'])} parameters")


if __name__ == "__main__":
    main()
