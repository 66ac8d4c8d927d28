#!/usr/bin/env python3
"""Reference numbers for the Swift samplers (schedulers), made with diffusers.

For each sampler the Swift package implements, this script asks diffusers' own scheduler class,
configured as Stable Diffusion 1.5 ships it, for:

  * the timesteps, the sigmas (Euler and DPM-Solver samplers) and `init_noise_sigma` for
    1, 2, 3, 7, 25 and 50 steps (and 999 or 1000 where that step count works);
  * a whole sampling loop, run the way `StableDiffusionPipeline` runs it, with a tiny fake
    "UNet" in place of the real one, on a (1, 4, 4, 4) latent: the final latents and, for the
    shorter runs, the predicted clean latent x0 of every step;
  * one image-to-image loop (strength 0.6) per sampler, run the way
    `StableDiffusionImg2ImgPipeline` runs it (`get_timesteps`, `add_noise`, `set_begin_index`);
  * fingerprints of the timesteps and sigmas for *every* step count from 1 to 1000 and every
    timestep spacing (an FNV-1a hash of the float32 timesteps and a weighted sum of the sigmas
    per block of 100 step counts), so the Swift tests can check all of them without storing them;
  * fingerprints of the training schedule ᾱ_t for the three beta schedules.

The fake model is deterministic and cheap, so the Swift test can evaluate exactly the same thing:

    eps(x, t) = float32( 0.5 tanh(x) + (0.01 t / 1000) cos(k) ),   k = 0, 1, ..., 63 (flat index)

computed in float64 and rounded once, so that both languages get the same float32 numbers.

Usage (from the repository root, in a Python environment with torch and diffusers):

    python Tools/reference/make_scheduler_reference.py

It writes Tests/StableDiffusionTests/Fixtures/schedulers/{ddim,pndm,euler,euler-a,dpmpp-2m-karras,
lcm,schedule}.json (about 335 KB in all), described in the README.md next to them.
"""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
    PNDMScheduler,
)
from diffusers.utils import logging as diffusers_logging

warnings.filterwarnings("ignore")  # from_config() warns about keys a class does not use
# ... and so does diffusers' logger for LCMScheduler, which is not "compatible" with PNDM's config.
diffusers_logging.set_verbosity_error()

OUTPUT = Path(__file__).resolve().parents[2] / "Tests/StableDiffusionTests/Fixtures/schedulers"

# Stable Diffusion 1.5's scheduler/scheduler_config.json, plus the spacing its PNDM scheduler
# uses by default ("leading"), which from_config() hands on to the other samplers.
SD15 = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "clip_sample": False,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}

# DPM++ 2M Karras, as people usually set it up for SD 1.5.
DPMPP_2M_KARRAS = {
    "algorithm_type": "dpmsolver++",
    "solver_order": 2,
    "lower_order_final": True,
    "use_karras_sigmas": True,
}

# LCMScheduler's own defaults, written out because the Swift side has to know them: the distilled
# model was trained on a 50-step "leading" grid (k = 1000 // 50 = 20: t = 999, 979, ..., 19), and
# c_skip / c_out use t * 10. LCM ignores timestep_spacing and steps_offset.
LCM = {
    "original_inference_steps": 50,
    "timestep_scaling": 10.0,
}

SHAPE = (1, 4, 4, 4)
STEP_COUNTS = [1, 2, 3, 7, 25, 50]
X0_MAX_STEPS = 25  # record every step's x0 for runs up to this many steps (keeps the files small)
SEED = 42
IMG2IMG_STEPS, IMG2IMG_STRENGTH, IMG2IMG_SEED = 25, 0.6, 7

# LCM runs few steps. 1-8 are the counts people use; 7, 25 and 50 (the most it accepts) reach the
# longer schedules. Its image-to-image references keep the other samplers' strength, 0.6, with
# LCM's usual 4 steps (StableDiffusionImg2ImgPipeline runs int(4 * 0.6) = 2 of them) and with 8
# (4 run). diffusers' LatentConsistencyModelImg2ImgPipeline schedules differently (it passes the
# strength to set_timesteps); the README of the fixtures says how.
LCM_STEP_COUNTS = [1, 2, 3, 4, 6, 7, 8, 25, 50]
LCM_IMG2IMG_STEPS, LCM_IMG2IMG_MORE_STEPS = 4, 8
LCM_X0_MAX_STEPS = 8  # x0 of every step only for LCM's usual step counts (keeps the file small)


def make(kind: str, **overrides):
    """A fresh diffusers scheduler of the given CLI name with SD 1.5's configuration."""
    config = {**SD15, **overrides}
    if kind == "ddim":
        return DDIMScheduler.from_config(config)
    if kind == "pndm":
        return PNDMScheduler.from_config(config)
    if kind == "euler":
        return EulerDiscreteScheduler.from_config(config)
    if kind == "euler-a":
        return EulerAncestralDiscreteScheduler.from_config(config)
    if kind == "dpmpp-2m-karras":
        return DPMSolverMultistepScheduler.from_config({**config, **DPMPP_2M_KARRAS})
    if kind == "lcm":
        return LCMScheduler.from_config({**config, **LCM})
    raise ValueError(kind)


def fake_model(x: torch.Tensor, t) -> torch.Tensor:
    """eps(x, t) = 0.5 tanh(x) + (0.01 t / 1000) cos(k), in float64, rounded to float32 once."""
    k = torch.arange(x.numel(), dtype=torch.float64).reshape(x.shape)
    return (0.5 * torch.tanh(x.double()) + (0.01 * float(t) / 1000) * torch.cos(k)).float()


def initial_image_latents() -> torch.Tensor:
    """The img2img "encoded image": 0.8 sin(0.37 k), again rounded from float64 once."""
    k = torch.arange(int(np.prod(SHAPE)), dtype=torch.float64).reshape(SHAPE)
    return (0.8 * torch.sin(0.37 * k)).float()


def floats(values) -> list[float]:
    """float32 numbers as the shortest decimal that reads back to the same float32."""
    return [float(np.format_float_positional(np.float32(v), unique=True, trim="-")) for v in
            np.asarray(values, dtype=np.float32).ravel()]


def timestep_list(scheduler) -> list:
    values = scheduler.timesteps.numpy()
    return [int(v) for v in values] if values.dtype.kind == "i" else floats(values)


def sigma_list(kind: str, scheduler):
    """σ for each step plus the final 0, for the samplers that work with σ (None for DDIM, PNDM)."""
    return floats(scheduler.sigmas.numpy()) if kind in ("euler", "euler-a", "dpmpp-2m-karras") else None


def step(kind, scheduler, eps, t, latents, generator, eta):
    """One scheduler step the way the pipeline calls it; returns (prev_sample, x0)."""
    if kind == "pndm":
        prev = scheduler.step(eps, t, latents).prev_sample
        # PNDM does not report x0; the Swift side computes it from the model output:
        # x0 = (x_t - sqrt(1 - ᾱ_t) eps) / sqrt(ᾱ_t), in float32.
        alpha_prod = scheduler.alphas_cumprod[int(t)]
        x0 = (latents - (1 - alpha_prod) ** 0.5 * eps) / alpha_prod ** 0.5
        return prev, x0
    if kind == "ddim":
        out = scheduler.step(eps, t, latents, eta=eta, generator=generator)
        return out.prev_sample, out.pred_original_sample
    if kind == "dpmpp-2m-karras":
        prev = scheduler.step(eps, t, latents, generator=generator).prev_sample
        return prev, scheduler.model_outputs[-1]  # the data prediction x0 it just stored
    if kind == "lcm":
        # The pipeline hands its one generator to step(), which draws the fresh noise of every
        # step but the last from it, right after the initial latents (or the img2img noise).
        # `denoised` = c_out x0 + c_skip x_t is what LCM returns and what the pipelines decode.
        out = scheduler.step(eps, t, latents, generator=generator)
        return out.prev_sample, out.denoised
    out = scheduler.step(eps, t, latents, generator=generator)
    return out.prev_sample, out.pred_original_sample


def txt2img_run(kind: str, steps: int, eta: float = 0.0, x0_max_steps: int = X0_MAX_STEPS) -> dict:
    """StableDiffusionPipeline's loop with the fake model: latents = randn * init_noise_sigma, then
    scale_model_input -> model -> step for every timestep, all draws from one generator."""
    scheduler = make(kind)
    scheduler.set_timesteps(steps)
    generator = torch.Generator("cpu").manual_seed(SEED)
    latents = torch.randn(SHAPE, generator=generator) * scheduler.init_noise_sigma
    x0s = []
    for t in scheduler.timesteps:
        eps = fake_model(scheduler.scale_model_input(latents, t), t)
        latents, x0 = step(kind, scheduler, eps, t, latents, generator, eta)
        x0s.append(floats(x0))
    run = {
        "steps": steps,
        "seed": SEED,
        "eta": eta,
        "timesteps": timestep_list(scheduler),
        "sigmas": sigma_list(kind, scheduler),
        "init_noise_sigma": floats([float(scheduler.init_noise_sigma)])[0],
        "final": floats(latents),
        "x0": x0s if steps <= x0_max_steps else None,
    }
    return run


def img2img_run(kind: str, steps: int, strength: float) -> dict:
    """StableDiffusionImg2ImgPipeline's get_timesteps + prepare_latents + loop, with the fake model
    and fixed "image latents" in place of the VAE encoder's output."""
    scheduler = make(kind)
    scheduler.set_timesteps(steps)
    init_timestep = min(int(steps * strength), steps)
    t_start = max(steps - init_timestep, 0)
    timesteps = scheduler.timesteps[t_start * scheduler.order:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(t_start * scheduler.order)
    generator = torch.Generator("cpu").manual_seed(IMG2IMG_SEED)
    noise = torch.randn(SHAPE, generator=generator)
    latents = scheduler.add_noise(initial_image_latents(), noise, timesteps[:1])
    noised = floats(latents)
    x0s = []
    for t in timesteps:
        eps = fake_model(scheduler.scale_model_input(latents, t), t)
        latents, x0 = step(kind, scheduler, eps, t, latents, generator, 0.0)
        x0s.append(floats(x0))
    return {
        "steps": steps,
        "strength": strength,
        "seed": IMG2IMG_SEED,
        "start_index": t_start * scheduler.order,
        "noised": noised,
        "final": floats(latents),
        "x0": x0s,
    }


# MARK: - Fingerprints for every step count

def fnv1a(data: bytes, h: int = 0xCBF29CE484222325) -> int:
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def float32_bytes(values) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def usable(kind: str, scheduler) -> bool:
    """Whether diffusers' schedule for this step count makes sense: every timestep inside
    0..<1000 for the samplers that index ᾱ_t with it (Euler clamps t = 1000 to the last sigma),
    and none negative (trailing spacing's float np.arange sometimes adds a step at t = -1)."""
    t = scheduler.timesteps.numpy()
    if t.min() < 0:
        return False
    return kind in ("euler", "euler-a") or t.max() < 1000


# A timestep computed within this distance of a rounding tie (k + 0.5) may round the other way
# in a reimplementation: PyTorch's float32 sqrt is not the correctly rounded IEEE one in every
# case, so σ_t can differ in the last bit, which moves DPM-Solver's fractional timesteps by ~1e-5.
NEAR_TIE = 2e-5


def near_ties(scheduler, steps: int) -> list[int]:
    """Positions of DPM-Solver's Karras timesteps that were within NEAR_TIE of a rounding tie,
    recomputed with the scheduler's own helpers exactly as its set_timesteps does."""
    sigmas = np.array(((1 - scheduler.alphas_cumprod) / scheduler.alphas_cumprod) ** 0.5)
    karras = scheduler._convert_to_karras(in_sigmas=np.flip(sigmas).copy(), num_inference_steps=steps)
    raw = np.array([scheduler._sigma_to_t(sigma, np.log(sigmas)) for sigma in karras])
    assert np.array_equal(raw.round().astype(np.int64), scheduler.timesteps.numpy())
    return [i for i, t in enumerate(raw) if abs(t - np.floor(t) - 0.5) < NEAR_TIE]


def fingerprints(kind: str, spacing: str) -> dict:
    """Checks of every step count from 1 to 1000, in blocks of 100 step counts:

    * a hash of the timesteps (per step count: uint32 count, then the float32 timesteps, with
      near-tie DPM-Solver timesteps replaced by -1 and listed separately in `near_ties` as
      [steps, index, timestep]);
    * Σ (i + 1)·σ_i over the σs of each step count, summed in float64 (σs may differ from a
      reimplementation in the last bit, so they are compared with a tolerance, not hashed)."""
    timestep_hashes, sigma_sums, rejected, ties = [], [], [], []
    scheduler = make(kind, timestep_spacing=spacing)
    for block in range(10):
        h, sigma_sum = 0xCBF29CE484222325, 0.0
        for steps in range(block * 100 + 1, block * 100 + 101):
            try:
                scheduler.set_timesteps(steps)
            except ValueError:  # LCM refuses more steps than original_inference_steps
                rejected.append(steps)
                continue
            if not usable(kind, scheduler):
                rejected.append(steps)
                continue
            t = scheduler.timesteps.numpy().astype(np.float32)
            if kind == "dpmpp-2m-karras":
                for i in near_ties(scheduler, steps):
                    ties.append([steps, i, int(t[i])])
                    t[i] = -1
            h = fnv1a(struct.pack("<I", len(t)) + float32_bytes(t), h)
            sigmas = sigma_list(kind, scheduler)
            if sigmas is not None:
                sigma_sum += sum((i + 1) * sigma for i, sigma in enumerate(sigmas))
        timestep_hashes.append(f"{h:016x}")
        sigma_sums.append(sigma_sum)
    return {
        "spacing": spacing,
        "timestep_hashes": timestep_hashes,
        "sigma_sums": sigma_sums if kind in ("euler", "euler-a", "dpmpp-2m-karras") else None,
        "rejected_steps": rejected,
        "near_ties": ties,
    }


def configuration(kind: str) -> dict:
    extra = {"dpmpp-2m-karras": DPMPP_2M_KARRAS, "lcm": LCM}.get(kind, {})
    return {**SD15, **extra}


def boundary_scalings(scheduler) -> dict:
    """LCM's c_skip and c_out at each timestep of its 50-step grid (and at 0), as step() computes
    them: the pipeline's timestep is an int64 tensor, so t * timestep_scaling and the rest are
    float32 arithmetic."""
    timesteps = list(range(999, 0, -20)) + [0]
    c_skip, c_out = zip(*(scheduler.get_scalings_for_boundary_condition_discrete(torch.tensor(t))
                          for t in timesteps))
    return {"timesteps": timesteps, "c_skip": floats(c_skip), "c_out": floats(c_out)}


def lcm_file() -> dict:
    """LCM: the sampler's usual step counts, and its image-to-image runs (see LCM_STEP_COUNTS)."""
    scheduler = make("lcm")
    scheduler.set_timesteps(4)
    four = [int(t) for t in scheduler.timesteps]
    assert four == [999, 759, 499, 259], four
    print(f"lcm: 4 steps -> timesteps {four}")
    return {
        "scheduler": "lcm",
        "configuration": configuration("lcm"),
        "shape": list(SHAPE),
        "fake_model": "eps = float32(0.5 * tanh(x) + (0.01 * t / 1000) * cos(k)), k = flat index, in float64",
        "boundary_scalings": boundary_scalings(scheduler),
        "txt2img": [txt2img_run("lcm", n, x0_max_steps=LCM_X0_MAX_STEPS) for n in LCM_STEP_COUNTS],
        "img2img": img2img_run("lcm", LCM_IMG2IMG_STEPS, IMG2IMG_STRENGTH),
        "img2img_more": [img2img_run("lcm", LCM_IMG2IMG_MORE_STEPS, IMG2IMG_STRENGTH)],
        # LCM ignores timestep_spacing: the three fingerprints are the same, which is the point.
        "all_step_counts": [fingerprints("lcm", spacing) for spacing in ["leading", "linspace", "trailing"]],
    }


def scheduler_file(kind: str) -> dict:
    if kind == "lcm":
        return lcm_file()
    runs = [txt2img_run(kind, n) for n in STEP_COUNTS]
    if kind in ("euler", "euler-a"):
        runs.append(txt2img_run(kind, 1000))
    elif kind in ("ddim", "pndm"):
        runs.append(txt2img_run(kind, 999))  # 1000 steps would reach t = 1000 (see `usable`)
    if kind == "ddim":
        runs.append(txt2img_run(kind, 7, eta=1.0))
        runs.append(txt2img_run(kind, 25, eta=0.5))
    spacings = ["leading"] if kind == "dpmpp-2m-karras" else ["leading", "linspace", "trailing"]
    return {
        "scheduler": kind,
        "configuration": configuration(kind),
        "shape": list(SHAPE),
        "fake_model": "eps = float32(0.5 * tanh(x) + (0.01 * t / 1000) * cos(k)), k = flat index, in float64",
        "txt2img": runs,
        "img2img": img2img_run(kind, IMG2IMG_STEPS, IMG2IMG_STRENGTH),
        "all_step_counts": [fingerprints(kind, spacing) for spacing in spacings],
    }


def schedule_file() -> dict:
    """ᾱ_t for the three beta schedules, as diffusers computes it in float32."""
    out = {}
    for name, start, end in [("scaled_linear", 0.00085, 0.012), ("linear", 0.0001, 0.02),
                             ("squaredcos_cap_v2", 0.0001, 0.02)]:
        scheduler = DDIMScheduler(beta_start=start, beta_end=end, beta_schedule=name)
        alphas_cumprod = scheduler.alphas_cumprod.numpy()
        out[name] = {
            "beta_start": start,
            "beta_end": end,
            "betas_hash": f"{fnv1a(float32_bytes(scheduler.betas.numpy())):016x}",
            "alphas_cumprod_hash": f"{fnv1a(float32_bytes(alphas_cumprod)):016x}",
            "alphas_cumprod_samples": {str(t): floats([alphas_cumprod[t]])[0] for t in (0, 1, 500, 998, 999)},
        }
    return out


def main() -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for kind in ["ddim", "pndm", "euler", "euler-a", "dpmpp-2m-karras", "lcm"]:
        data = scheduler_file(kind)
        (OUTPUT / f"{kind}.json").write_text(json.dumps(data, separators=(",", ":")) + "\n")
        image_runs = 1 + len(data.get("img2img_more", []))
        print(f"{kind}: {len(data['txt2img'])} text-to-image runs, {image_runs} image-to-image run"
              f"{'s' if image_runs > 1 else ''}")
    (OUTPUT / "schedule.json").write_text(json.dumps(schedule_file(), indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUTPUT.glob("*.json"))
    print(f"wrote {OUTPUT.relative_to(Path.cwd()) if OUTPUT.is_relative_to(Path.cwd()) else OUTPUT.name}: "
          f"{total / 1024:.0f} KB")


if __name__ == "__main__":
    main()
