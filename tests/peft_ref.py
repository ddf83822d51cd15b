#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""peft_ref.py: the independent side of tests/t/t5301-train-lora.sh for PEFT adapters.

PEFT itself is not installable here, so its documented rules are applied by hand on top of
tests/interchange_ref.py's GPT-2 (safetensors reader, transformers' names, float64 forward):
target_modules match a module whose name is the target or ends with "." + target; a LoRA
module holds lora_A.weight (r, in_features) and lora_B.weight (out_features, r), nn.Linear
weights even on GPT-2's Conv1D layers (fan_in_fan_out true); its weight becomes
W + (lora_alpha / r) * transpose(B @ A) (PEFT's get_delta_weight with fan_in_fan_out).

  check ADAPTER_DIR --layers L --width C [--base NAME]   adapter_config.json and the tensor
                                                         names and shapes PEFT expects
  logits BASE_HF_DIR ADAPTER_DIR --ids 1,2,3 -o OUT      f32 logits of the base with the
                                                         adapter applied
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interchange_ref as ref  # noqa: E402  (the GPT-2 loader and forward of t5100)

MODULES = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
PREFIX = "base_model.model.transformer."


def targeted(cfg):
    """The module paths of a GPT-2 block that PEFT adapts for this adapter_config."""
    want = cfg["target_modules"]
    if isinstance(want, str):
        raise SystemExit("target_modules as a regular expression: not handled here")
    return [m for m in MODULES if any(m == t or m.endswith("." + t) for t in want)]


def features(module, C):
    """(in_features, out_features) of a GPT-2 Conv1D module of width C."""
    return {"attn.c_attn": (C, 3 * C), "attn.c_proj": (C, C), "mlp.c_fc": (C, 4 * C),
            "mlp.c_proj": (4 * C, C)}[module]


def load_adapter(d):
    with open(os.path.join(d, "adapter_config.json")) as f:
        cfg = json.load(f)
    return cfg, ref.read_safetensors(os.path.join(d, "adapter_model.safetensors"))


def cmd_check(a):
    cfg, sd = load_adapter(a.dir)
    want = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "bias": "none",
            "fan_in_fan_out": True, "lora_dropout": 0.0, "inference_mode": True,
            "base_model_name_or_path": a.base, "use_rslora": False}
    for k, v in want.items():
        assert cfg.get(k, "missing") == v, (k, cfg.get(k, "missing"), v)
    r = cfg["r"]
    assert isinstance(r, int) and r > 0 and cfg["lora_alpha"] > 0
    expect = {}
    for layer in range(a.layers):
        for m in targeted(cfg):
            i, o = features(m, a.width)
            p = f"{PREFIX}h.{layer}.{m}."
            expect[p + "lora_A.weight"] = [r, i]
            expect[p + "lora_B.weight"] = [o, r]
    got = {k: list(v.shape) for k, v in sd.items()}
    assert got == expect, (sorted(set(got) ^ set(expect)), got)
    print(f"r={r} lora_alpha={cfg['lora_alpha']} targets {targeted(cfg)}: {len(got)} tensors")


def cmd_logits(a):
    cfg, sd = ref.load_dir(a.base)
    acfg, ad = load_adapter(a.adapter)
    scale = acfg["lora_alpha"] / acfg["r"]
    used = 0
    for layer in range(cfg["n_layer"]):
        for m in targeted(acfg):
            p = f"{PREFIX}h.{layer}.{m}."
            A, B = ad[p + "lora_A.weight"].double(), ad[p + "lora_B.weight"].double()
            w = f"h.{layer}.{m}.weight"
            delta = (B @ A) * scale  # (out, in): nn.Linear's layout
            if acfg["fan_in_fan_out"]:
                delta = delta.T  # Conv1D stores (in, out)
            sd[w] = sd[w].double() + delta
            used += 2
    assert used == len(ad), f"{len(ad) - used} adapter tensors matched no module"
    ids = [int(x) for x in a.ids.split(",")]
    ref.write_f32(a.o, ref.forward(cfg, sd, ids))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(required=True)
    p = sub.add_parser("check")
    p.add_argument("dir")
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--base", default=None)
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("logits")
    p.add_argument("base")
    p.add_argument("adapter")
    p.add_argument("--ids", required=True)
    p.add_argument("-o", required=True)
    p.set_defaults(fn=cmd_logits)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
