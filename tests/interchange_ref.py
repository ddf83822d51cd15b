#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""interchange_ref.py: the independent PyTorch side of tests/t/t5100-train-interchange.sh.

Reads and writes Hugging Face GPT-2 checkpoints by hand (no transformers, no safetensors
package: a safetensors file is a u64 little-endian header length, a JSON header and raw
little-endian tensors) and runs GPT-2's forward with transformers' names and layouts (Conv1D
weights are (in, out)), in float64, as the reference cm-train's logits are compared with.

  logits DIR --ids 1,2,3 -o OUT          f32 logits (n x V) of a transformers GPT-2 directory
  compare A B --tol X                    max |a - b| of two f32 files; exit 1 above X
  make-hub DIR --layers L --width C ...  a random GPT-2 in the Hub's layout (see --help)
  hostile SRC DST KIND                   a copy of SRC whose model.safetensors is damaged
  read-time FILE                         seconds to read a safetensors file into tensors
  gguf-info FILE                         a GGUF file's metadata and tensors, as JSON
  llama-report OUT MODEL IDS PROMPTS C... llama.cpp's ids and completions against cm-train's
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys
import time

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def read_safetensors(path):
    """{name: tensor} of a safetensors file, read into one buffer (tensors are views of it)."""
    size = os.path.getsize(path)
    buf = bytearray(size)
    with open(path, "rb") as f:
        if f.readinto(buf) != size:
            raise SystemExit(f"{path}: short read")
    n = struct.unpack_from("<Q", buf, 0)[0]
    header = json.loads(bytes(buf[8:8 + n]))
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dt = DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        count = (end - b) // torch.tensor([], dtype=dt).element_size()
        t = torch.frombuffer(buf, dtype=dt, count=count, offset=base + b) if count else \
            torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"])
    return out


def load_dir(d):
    """config and state dict (names without 'transformer.') of a transformers GPT-2 directory."""
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    single = os.path.join(d, "model.safetensors")
    files = [single]
    if not os.path.exists(single):
        with open(os.path.join(d, "model.safetensors.index.json")) as f:
            index = json.load(f)
        files = [os.path.join(d, s) for s in sorted(set(index["weight_map"].values()))]
    sd = {}
    for p in files:
        for k, v in read_safetensors(p).items():
            sd[k[len("transformer."):] if k.startswith("transformer.") else k] = v
    return cfg, sd


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def forward(cfg, sd, ids):
    """GPT2LMHeadModel's forward (eval mode) in float64; logits (len(ids), V)."""
    C, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    g = lambda k: sd[k].double()
    T, hd = len(ids), C // H
    ids = torch.tensor(ids)
    x = g("wte.weight")[ids] + g("wpe.weight")[:T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        p = f"h.{l}."
        a = F.layer_norm(x, (C,), g(p + "ln_1.weight"), g(p + "ln_1.bias"), eps)
        qkv = a @ g(p + "attn.c_attn.weight") + g(p + "attn.c_attn.bias")
        q, k, v = (t.reshape(T, H, hd).transpose(0, 1) for t in qkv.split(C, dim=-1))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(0, 1).reshape(T, C)
        x = x + y @ g(p + "attn.c_proj.weight") + g(p + "attn.c_proj.bias")
        m = F.layer_norm(x, (C,), g(p + "ln_2.weight"), g(p + "ln_2.bias"), eps)
        h = gelu_new(m @ g(p + "mlp.c_fc.weight") + g(p + "mlp.c_fc.bias"))
        x = x + h @ g(p + "mlp.c_proj.weight") + g(p + "mlp.c_proj.bias")
    x = F.layer_norm(x, (C,), g("ln_f.weight"), g("ln_f.bias"), eps)
    tied = cfg.get("tie_word_embeddings", True) or "lm_head.weight" not in sd
    head = g("wte.weight") if tied else g("lm_head.weight")
    return x @ head.T


def write_f32(path, t):
    with open(path, "wb") as f:
        f.write(t.to(torch.float32).contiguous().numpy().astype("<f4").tobytes())


def cmd_logits(a):
    cfg, sd = load_dir(a.dir)
    ids = [int(x) for x in a.ids.split(",")]
    write_f32(a.o, forward(cfg, sd, ids))


def cmd_compare(a):
    x = torch.frombuffer(bytearray(open(a.a, "rb").read()), dtype=torch.float32)
    y = torch.frombuffer(bytearray(open(a.b, "rb").read()), dtype=torch.float32)
    if x.numel() != y.numel() or x.numel() == 0:
        raise SystemExit(f"compare: {x.numel()} and {y.numel()} values")
    d = (x.double() - y.double()).abs().max().item()
    print(f"max abs diff {d:.3g} over {x.numel()} logits (tolerance {a.tol:g})")
    sys.exit(0 if d < a.tol else 1)


def random_gpt2(L, C, H, T, V, seed):
    """A GPT-2 state dict with random weights (names without 'transformer.', Conv1D layout)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s, std=0.1: torch.randn(*s, generator=g) * std
    sd = {"wte.weight": r(V, C), "wpe.weight": r(T, C, std=0.05)}
    for l in range(L):
        p = f"h.{l}."
        for ln in ("ln_1", "ln_2"):
            sd[p + ln + ".weight"] = 1.0 + r(C)
            sd[p + ln + ".bias"] = r(C)
        for name, i, o in (("attn.c_attn", C, 3 * C), ("attn.c_proj", C, C),
                           ("mlp.c_fc", C, 4 * C), ("mlp.c_proj", 4 * C, C)):
            sd[p + name + ".weight"] = r(i, o)
            sd[p + name + ".bias"] = r(o)
    sd["ln_f.weight"] = 1.0 + r(C)
    sd["ln_f.bias"] = r(C)
    return sd


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype("<f4").tobytes()


def write_safetensors(path, items):
    """items: [(name, tensor)] written in this order, header padded to 8 bytes."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in items:
        b = tensor_bytes(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for b in blobs:
            f.write(b)
    return off


def cmd_make_hub(a):
    L, C, H, T, V = a.layers, a.width, a.heads, a.ctx, a.vocab
    sd = random_gpt2(L, C, H, T, V, a.seed)
    cfg = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
           "attn_pdrop": 0.1, "bos_token_id": V - 1, "embd_pdrop": 0.1, "eos_token_id": V - 1,
           "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
           "n_ctx": T, "n_embd": C, "n_head": H, "n_inner": None, "n_layer": L,
           "n_positions": T, "resid_pdrop": 0.1, "summary_type": "cls_index",
           "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
           "vocab_size": V}
    if a.head != "tied":
        cfg["tie_word_embeddings"] = False
        sd["lm_head.weight"] = sd["wte.weight"].clone()
        if a.head == "differ":
            sd["lm_head.weight"][3, 5] += 0.25
    dt = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[a.dtype]
    items = []
    for k, v in sd.items():
        name = k if (a.no_prefix or k == "lm_head.weight") else "transformer." + k
        items.append((name, v.to(dt)))
        if a.buffers and k.endswith("ln_1.weight"):
            p = name[:-len("ln_1.weight")]
            items.append((p + "attn.bias", torch.tril(torch.ones(T, T)).view(1, 1, T, T)))
            items.append((p + "attn.masked_bias", torch.tensor(-1e4)))
    os.makedirs(a.dir, exist_ok=True)
    with open(os.path.join(a.dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if a.tokenizer:
        shutil.copyfile(a.tokenizer, os.path.join(a.dir, "tokenizer.json"))
    if a.shards <= 1:
        write_safetensors(os.path.join(a.dir, "model.safetensors"), items)
        return
    per, wmap, total = (len(items) + a.shards - 1) // a.shards, {}, 0
    for s in range(a.shards):
        fn = f"model-{s + 1:05d}-of-{a.shards:05d}.safetensors"
        part = items[s * per:(s + 1) * per]
        total += write_safetensors(os.path.join(a.dir, fn), part)
        wmap.update({name: fn for name, _ in part})
    with open(os.path.join(a.dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, f, indent=2)


def hostile_header(kind, header, data_len):
    """Damage the parsed header for KIND; returns (header, the named tensor)."""
    names = [k for k in header if k != "__metadata__"]
    pick = lambda suffix: next(k for k in names if k.endswith(suffix))
    if kind == "outside":
        t = pick("h.0.mlp.c_fc.weight")
        header[t]["data_offsets"] = [o + data_len for o in header[t]["data_offsets"]]
    elif kind == "overlap":
        t = pick("h.0.ln_2.bias")
        header[t]["data_offsets"] = list(header[pick("h.0.ln_2.weight")]["data_offsets"])
    elif kind == "shape":
        t = pick("h.0.attn.c_attn.weight")
        header[t]["shape"] = header[t]["shape"][::-1]
    elif kind == "dtype":
        t = pick("h.0.attn.c_proj.bias")
        header[t]["dtype"] = "Q4"
    return header, t


def cmd_hostile(a):
    """A copy of SRC with model.safetensors (or config.json) damaged; prints the tensor named."""
    shutil.copytree(a.src, a.dst)
    path = os.path.join(a.dst, "model.safetensors")
    raw = open(path, "rb").read()
    n = struct.unpack_from("<Q", raw, 0)[0]
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    named = ""
    if a.kind == "truncate":
        out = raw[:8 + n + len(data) * 2 // 3]
        named = [k for k in header if k != "__metadata__"][-1]
    elif a.kind == "header-length":
        out = struct.pack("<Q", len(raw)) + raw[8:]
    elif a.kind == "config":
        cfg = json.load(open(os.path.join(a.dst, "config.json")))
        cfg["vocab_size"] += 1
        json.dump(cfg, open(os.path.join(a.dst, "config.json"), "w"))
        out, named = raw, next(k for k in header if k.endswith("wte.weight"))
    else:
        if a.kind == "duplicate":
            named = [k for k in header if k != "__metadata__"][1]
            text = json.dumps(header, separators=(",", ":"))
            entry = f'"{named}":' + json.dumps(header[named], separators=(",", ":"))
            text = text[:-1] + "," + entry + "}"
        else:
            header, named = hostile_header(a.kind, header, len(data))
            text = json.dumps(header, separators=(",", ":"))
        text = text.encode()
        out = struct.pack("<Q", len(text)) + text + data
    open(path, "wb").write(out)
    print(named)


def cmd_read_time(a):
    t0 = time.perf_counter()
    sd = read_safetensors(a.file)
    n = sum(t.numel() for t in sd.values())
    print(f"{time.perf_counter() - t0:.3f} s for {len(sd)} tensors, {n} values")


GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                10: "<Q", 11: "<q", 12: "<d"}
GGML_TYPES = {0: "F32", 1: "F16", 8: "Q8_0", 30: "BF16"}


def gguf_value(buf, pos, t):
    """(value, next position) of a GGUF metadata value of type t at pos."""
    if t == 8:
        n = struct.unpack_from("<Q", buf, pos)[0]
        return buf[pos + 8:pos + 8 + n].decode("utf-8", "replace"), pos + 8 + n
    if t == 9:
        et, n = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        out = []
        for _ in range(n):
            v, pos = gguf_value(buf, pos, et)
            out.append(v)
        return out, pos
    v = struct.unpack_from(GGUF_SCALARS[t], buf, pos)[0]
    return v, pos + struct.calcsize(GGUF_SCALARS[t])


def cmd_gguf_info(a):
    """Print {"version", "kv": {key: value}, "tensors": [...], "data_start"} of a GGUF file."""
    buf = open(a.file, "rb").read()
    magic, version, nt, nkv = struct.unpack_from("<4sIQQ", buf, 0)
    if magic != b"GGUF":
        raise SystemExit(f"{a.file}: not GGUF")
    pos, kv, tensors = 24, {}, []
    for _ in range(nkv):
        n = struct.unpack_from("<Q", buf, pos)[0]
        key = buf[pos + 8:pos + 8 + n].decode()
        t = struct.unpack_from("<I", buf, pos + 8 + n)[0]
        kv[key], pos = gguf_value(buf, pos + 12 + n, t)
    for _ in range(nt):
        n = struct.unpack_from("<Q", buf, pos)[0]
        name = buf[pos + 8:pos + 8 + n].decode()
        pos += 8 + n
        nd = struct.unpack_from("<I", buf, pos)[0]
        dims = list(struct.unpack_from(f"<{nd}Q", buf, pos + 4))
        t, off = struct.unpack_from("<IQ", buf, pos + 4 + 8 * nd)
        pos += 4 + 8 * nd + 12
        tensors.append({"name": name, "type": GGML_TYPES.get(t, t), "dims": dims, "offset": off})
    align = kv.get("general.alignment", 32)
    for k in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"):
        if k in kv:
            kv[k] = {"count": len(kv[k]), "first": kv[k][:3]}
    print(json.dumps({"version": version, "kv": kv, "tensors": tensors,
                      "data_start": (pos + align - 1) // align * align, "size": len(buf)}))


def cmd_llama_report(a):
    """Compare gguf_llama.mjs's lines for MODEL with cm-tokenize's ids and cm-train complete's
    texts (one file per prompt, in PROMPTS's order); prints 'ids same|differ' and
    'completions K/N identical' (and each difference)."""
    lines = [json.loads(x) for x in open(a.out, encoding="utf-8") if x.strip()]
    lines = [x for x in lines if x["model"] == a.model]
    ids = json.loads(open(a.ids).read())
    prompts = [x for x in open(a.prompts, encoding="utf-8", newline="").read().split("\n") if x]
    mine = [open(c, encoding="utf-8", newline="").read()[:-1] for c in a.completions]
    if not lines or len(lines) != 1 + len(prompts) or len(mine) != len(prompts):
        raise SystemExit(f"llama-report: {len(lines)} lines for {a.model}, {len(prompts)} prompts")
    print("ids", "same" if lines[0]["ids"] == ids else "differ", f"({len(ids)} tokens)")
    same = 0
    for p, theirs, ours in zip(prompts, lines[1:], mine):
        if theirs["prompt"] == p and theirs["text"] == ours:
            same += 1
        else:
            print(f"differ after {p!r}:\n  llama.cpp {theirs['text']!r}\n  cm-train  {ours!r}")
    print(f"completions {same}/{len(mine)} identical")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("logits")
    p.add_argument("dir")
    p.add_argument("--ids", required=True)
    p.add_argument("-o", required=True)
    p.set_defaults(fn=cmd_logits)
    p = sub.add_parser("compare")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--tol", type=float, required=True)
    p.set_defaults(fn=cmd_compare)
    p = sub.add_parser("make-hub")
    p.add_argument("dir")
    for k, d in (("layers", 2), ("width", 64), ("heads", 4), ("ctx", 32), ("vocab", 300),
                 ("seed", 1), ("shards", 1)):
        p.add_argument("--" + k, type=int, default=d)
    p.add_argument("--no-prefix", action="store_true", help="names without 'transformer.'")
    p.add_argument("--head", choices=("tied", "same", "differ"), default="tied",
                   help="tied: no lm_head.weight; same/differ: an untied lm_head.weight")
    p.add_argument("--dtype", choices=("f32", "f16", "bf16"), default="f32")
    p.add_argument("--buffers", action="store_true", help="also h.N.attn.bias/masked_bias")
    p.add_argument("--tokenizer")
    p.set_defaults(fn=cmd_make_hub)
    p = sub.add_parser("hostile")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("kind", choices=("truncate", "header-length", "outside", "overlap", "shape",
                                    "dtype", "duplicate", "config"))
    p.set_defaults(fn=cmd_hostile)
    p = sub.add_parser("gguf-info")
    p.add_argument("file")
    p.set_defaults(fn=cmd_gguf_info)
    p = sub.add_parser("llama-report")
    p.add_argument("out")
    p.add_argument("model")
    p.add_argument("ids")
    p.add_argument("prompts", help="a file, one prompt per line")
    p.add_argument("completions", nargs="+")
    p.set_defaults(fn=cmd_llama_report)
    p = sub.add_parser("read-time")
    p.add_argument("file")
    p.set_defaults(fn=cmd_read_time)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
