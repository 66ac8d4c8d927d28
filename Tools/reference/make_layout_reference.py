"""The text encoder's key names as transformers writes them natively (Tests/StableDiffusionTests/Fixtures/tiny/text_encoder_native_keys.json).

Run from the repository root:

    .venv/bin/python Tools/reference/make_layout_reference.py

Our fixtures store the text encoder under the classic names (`text_model.embeddings...`, see
checkpoint_layouts.text_encoder_state_dict), which every SD 1.x file uses. transformers 5 dropped the
`text_model` level from CLIPTextModel: its `state_dict()` names the tensors `embeddings...`,
`encoder...`, `final_layer_norm...`, and so do files written from it directly (`save_file(model.
state_dict())`, training scripts, the first 5.x releases' `save_pretrained`). This script loads the
tiny fixture's text encoder and records both spellings the installed transformers produces: the
state dict's names and the names its `save_pretrained` writes. The Swift tests rebuild the tiny
model's folder with each and require the same text encoder.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import transformers
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "Tests/StableDiffusionTests/Fixtures/tiny"


def main() -> None:
    model = transformers.CLIPTextModel.from_pretrained(TINY / "diffusers/text_encoder")
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder, safe_serialization=True)
        with safe_open(Path(folder) / "model.safetensors", "pt") as file:
            saved = sorted(file.keys())
    state = sorted(k for k in model.state_dict() if not k.endswith("position_ids"))
    with safe_open(TINY / "diffusers/text_encoder/model.safetensors", "pt") as file:
        ours = sorted(file.keys())
    # Both are the fixture's names, with or without "text_model." (nothing else differs).
    for keys in (saved, state):
        assert sorted(k if k.startswith("text_model.") else "text_model." + k for k in keys) == ours, (keys, ours)
    record = {
        "transformers_version": transformers.__version__,
        "what": "tensor names of the tiny text encoder: CLIPTextModel.state_dict() and what save_pretrained writes",
        "state_dict": state,
        "save_pretrained": saved,
    }
    out = TINY / "text_encoder_native_keys.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{out.relative_to(ROOT)}: transformers {transformers.__version__}: state_dict names like {state[0]}, "
          f"save_pretrained writes {saved[0]}")


if __name__ == "__main__":
    main()
