#!/usr/bin/env python3
"""Reference numbers for the Swift optimiser: torch.optim.AdamW and clip_grad_norm_.

Two small parameters (a 3x2 matrix and a 4-vector) with seeded random values take three AdamW
steps with seeded random gradients (lr 1e-2, betas (0.9, 0.999), eps 1e-8, weight decay 0.1,
large enough that the decoupled decay shows in the numbers). Before each step the gradients go
through torch.nn.utils.clip_grad_norm_ with max_norm 1.0 (the third step's gradients are scaled
up so that clipping really happens). The script records the parameters, the gradients as given,
the norm clip_grad_norm_ returned, and the parameters after each step, in float32.

Usage (from the repository root, in a Python environment with torch):

    python Tools/reference/make_optimiser_reference.py

It writes Tests/TensorCoreTests/Fixtures/adamw.json (about 3 KB).
"""
import json
import pathlib

import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests/TensorCoreTests/Fixtures/adamw.json"


def main():
    generator = torch.Generator().manual_seed(7)
    names = ["weight", "bias"]
    parameters = {
        "weight": torch.nn.Parameter(torch.randn(3, 2, generator=generator)),
        "bias": torch.nn.Parameter(torch.randn(4, generator=generator)),
    }
    settings = {"lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.1, "max_norm": 1.0}
    optimiser = torch.optim.AdamW([parameters[n] for n in names], lr=settings["lr"], betas=tuple(settings["betas"]),
                                  eps=settings["eps"], weight_decay=settings["weight_decay"])
    record = {
        "settings": settings,
        "initial": {n: parameters[n].detach().flatten().tolist() for n in names},
        "shapes": {n: list(parameters[n].shape) for n in names},
        "steps": [],
    }
    for step in range(3):
        scale = 10.0 if step == 2 else 0.3
        gradients = {n: torch.randn(parameters[n].shape, generator=generator) * scale for n in names}
        for n in names:
            parameters[n].grad = gradients[n].clone()
        norm = torch.nn.utils.clip_grad_norm_([parameters[n] for n in names], settings["max_norm"])
        optimiser.step()
        record["steps"].append({
            "gradients": {n: gradients[n].flatten().tolist() for n in names},
            "norm": float(norm),
            "after": {n: parameters[n].detach().flatten().tolist() for n in names},
        })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
