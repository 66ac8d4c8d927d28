"""Fixtures for reading original PyTorch `.ckpt` checkpoints (Tests/StableDiffusionTests/Fixtures/ckpt).

Run from the repository root with a Python that has torch and safetensors:

    python Tools/reference/make_ckpt_fixtures.py

Files written, each the kind of thing a student may download or be sent:

    tiny-sd-fp16.ckpt     the tiny test model's original-named state dict, saved by torch.save the way
                          Lightning saved sd-v1-4.ckpt: {"state_dict": ..., "global_step": 123, "epoch": 4}.
                          Must give exactly the tensors of tiny/tiny-sd-fp16.safetensors.
    tiny-sd-bf16-novae.ckpt  the tiny model as some fine-tunes are shared: bfloat16, no VAE (meant to be used
                          with a separate VAE file), and the text encoder saved without the `text_model.`
                          level (`cond_stage_model.transformer.encoder.layers.0...`).
    tiny-vae.ckpt         the tiny model's VAE alone, the way standalone SD VAE files are saved: original
                          names without `first_stage_model.`, plus the training loss network's `loss.*`
                          tensors that no VAE uses.
    small-ema.ckpt        a few tensors of every network plus `model_ema.*` copies of two UNet weights
                          that differ from the raw ones; float32, float16, bfloat16 and int64 storages,
                          one tensor that is a view into another's storage, a parameter, and the non-tensor
                          entries of a Lightning training checkpoint (numpy numbers, a set, a class as key).
    small-ema.safetensors the same tensors through safetensors, to compare with.
    small-zip64.ckpt      small-ema.ckpt's entries rewritten into a zip64 archive (as files over 4 GB are).
    system.ckpt           a pickle whose __reduce__ calls os.system("touch <marker>") -- a real attack.
    eval.ckpt             the same through builtins.eval, pickled with protocol 4 (STACK_GLOBAL).
    calls-class.ckpt      a pickle that calls ModelCheckpoint (a name allowed only as a dictionary key).
    double.ckpt           a float64 tensor (storage type the project does not support).
    transposed.ckpt       a tensor saved as a transposed view (strides that are not row-major).
    legacy.ckpt           PyTorch's pre-1.6 (non-zip) format.
    truncated.ckpt        the first 60% of small-ema.ckpt, as an interrupted download leaves it.
"""

from __future__ import annotations

import collections
import io
import os
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests/StableDiffusionTests/Fixtures"
OUT = FIXTURES / "ckpt"

# The malicious files create this file in the working directory if anything runs them.
MARKER = "sd-ckpt-fixture-ran-code"


class RunsShell:
    """Unpickling this calls os.system: what a booby-trapped checkpoint does."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


class RunsEval:
    def __reduce__(self):
        return (eval, (f"__import__('os').system('touch {MARKER}')",))


def tiny_checkpoint() -> None:
    state = collections.OrderedDict(sorted(load_file(FIXTURES / "tiny/tiny-sd-fp16.safetensors").items()))
    torch.save({"state_dict": state, "global_step": 123, "epoch": 4}, OUT / "tiny-sd-fp16.ckpt")


def variant_checkpoints() -> None:
    tiny = load_file(FIXTURES / "tiny/tiny-sd.safetensors")
    text = "cond_stage_model.transformer.text_model."
    model = collections.OrderedDict()
    for key in sorted(tiny):
        if key.startswith("first_stage_model."):
            continue
        name = "cond_stage_model.transformer." + key[len(text):] if key.startswith(text) else key
        value = tiny[key]
        model[name] = value.to(torch.bfloat16) if value.is_floating_point() else value
    torch.save({"state_dict": model, "global_step": 1000}, OUT / "tiny-sd-bf16-novae.ckpt")

    vae = collections.OrderedDict((key[len("first_stage_model."):], tiny[key].to(torch.float16))
                                  for key in sorted(tiny) if key.startswith("first_stage_model."))
    vae["loss.logvar"] = torch.zeros(())
    vae["loss.perceptual_loss.lin0.model.1.weight"] = torch.ones(1, 64, 1, 1)
    torch.save({"state_dict": vae}, OUT / "tiny-vae.ckpt")


def model_checkpoint_class() -> type:
    """A stand-in for pytorch_lightning's ModelCheckpoint, pickled by reference under its real name."""
    names = ["pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint"]
    for name in names:
        sys.modules.setdefault(name, types.ModuleType(name))
    cls = type("ModelCheckpoint", (), {"__module__": names[-1]})
    sys.modules[names[-1]].ModelCheckpoint = cls
    return cls


def small_checkpoint() -> dict[str, torch.Tensor]:
    tiny = load_file(FIXTURES / "tiny/tiny-sd-fp16.safetensors")
    conv_in = "model.diffusion_model.input_blocks.0.0."
    state = collections.OrderedDict()
    state[conv_in + "weight"] = tiny[conv_in + "weight"].float()                    # float32
    state[conv_in + "bias"] = tiny[conv_in + "bias"].to(torch.bfloat16)              # bfloat16
    state["first_stage_model.quant_conv.bias"] = tiny["first_stage_model.quant_conv.bias"]   # float16
    shared = torch.arange(12, dtype=torch.float16)
    state["first_stage_model.quant_conv.weight"] = shared[4:12].reshape(8, 1, 1, 1)  # a view at offset 4
    state["cond_stage_model.transformer.text_model.final_layer_norm.weight"] = shared[:4]
    state["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(7).reshape(1, 7)  # int64
    state["betas"] = torch.nn.Parameter(torch.linspace(0.00085, 0.012, 5), requires_grad=False)  # _rebuild_parameter
    # EMA copies, named as LDM's LitEma names them: the parameter path without dots.
    state["model_ema.decay"] = torch.tensor(0.9999)
    state["model_ema.num_updates"] = torch.tensor(470000, dtype=torch.int64)
    state["model_ema.diffusion_modelinput_blocks00weight"] = state[conv_in + "weight"] * 0.5 + 0.25
    state["model_ema.diffusion_modelinput_blocks00bias"] = (state[conv_in + "bias"].float() - 1).to(torch.bfloat16)
    # Around the weights, what Lightning's training checkpoints carry: numpy numbers and sets
    # (pickled through numpy.dtype, numpy scalar and _codecs.encode) and the ModelCheckpoint class as
    # a dictionary key.
    callbacks = {model_checkpoint_class(): {"best_model_score": np.float64(0.5), "seen": {1, 2},
                                            "best_model_path": "logs/last.ckpt"}}
    torch.save({"state_dict": state, "global_step": 470000, "epoch": 6, "pytorch-lightning_version": "1.4.2",
                "callbacks": callbacks, "note": np.int64(7)}, OUT / "small-ema.ckpt")
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, OUT / "small-ema.safetensors")
    return state


def zip64_copy() -> None:
    """Python writes zip64 records only past 4 GB; lowering its limit forces them for a small file."""
    limit = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 1
    try:
        with zipfile.ZipFile(OUT / "small-ema.ckpt") as source, \
                zipfile.ZipFile(OUT / "small-zip64.ckpt", "w", zipfile.ZIP_STORED) as target:
            for info in source.infolist():
                with target.open(info.filename, "w", force_zip64=True) as entry:
                    entry.write(source.read(info))
    finally:
        zipfile.ZIP64_LIMIT = limit
    with open(OUT / "small-zip64.ckpt", "rb") as file:
        assert b"PK\x06\x06" in file.read(), "no zip64 end record written"


def malicious() -> None:
    small = {"model.diffusion_model.input_blocks.0.0.bias": torch.zeros(4, dtype=torch.float16)}
    torch.save({"state_dict": small, "payload": RunsShell()}, OUT / "system.ckpt")
    torch.save({"state_dict": small, "payload": RunsEval()}, OUT / "eval.ckpt", pickle_protocol=4)
    # Show that the files are live: Python's full unpickler runs them.
    with tempfile.TemporaryDirectory() as folder:
        for name in ["system.ckpt", "eval.ckpt"]:
            subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(OUT / name)!r}, weights_only=False)"],
                           cwd=folder, check=True)
            assert (Path(folder) / MARKER).exists(), f"{name} did not run its payload"
            (Path(folder) / MARKER).unlink()
    torch.save({"state_dict": {"first_stage_model.quant_conv.bias": torch.zeros(3, dtype=torch.float64)}},
               OUT / "double.ckpt")
    # A name that may appear as a key but must never be called.
    builds_callback = type("BuildsCallback", (), {"__reduce__": lambda self: (model_checkpoint_class(), ())})
    torch.save({"state_dict": small, "callback": builds_callback()}, OUT / "calls-class.ckpt")
    torch.save({"state_dict": {"first_stage_model.quant_proj.weight": torch.zeros(2, 3).t()}}, OUT / "transposed.ckpt")
    torch.save({"state_dict": small}, OUT / "legacy.ckpt", _use_new_zipfile_serialization=False)
    data = (OUT / "small-ema.ckpt").read_bytes()
    (OUT / "truncated.ckpt").write_bytes(data[: len(data) * 6 // 10])


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    tiny_checkpoint()
    variant_checkpoints()
    small_checkpoint()
    zip64_copy()
    malicious()
    for path in sorted(OUT.iterdir()):
        print(f"{path.stat().st_size:>9}  {path.relative_to(ROOT)}")
