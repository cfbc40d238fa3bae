#!/usr/bin/env python3
"""Train the bundled demo model: a byte-level Mamba-2 on the King James Bible.

The text is the King James Version as Debian ships it (packages bible-kjv and bible-kjv-text;
the translation's copyright has expired, and the package's data file is "for unrestricted use",
see /usr/share/doc/bible-kjv-text/copyright). One verse per line, verse numbers dropped.

The model is a small Mamba-2 (4 layers, d_model 128, 471k parameters; the Hugging Face
Mamba2Mixer computation, written out here in plain PyTorch with the SSD algorithm in its
quadratic form, exact for sequences that start from the zero state) over bytes: vocabulary 256, tied embeddings. It is written as a native recur
spec (spec.json + model.safetensors under recur's canonical tensor names, docs/native-spec.md),
which `recur convert` turns into the committed examples/models/kjv-mamba2.recur. The script also
writes the logits of a fixed prompt computed here in float64 (expected_logits.f32) so a test can
check recur against this code. The committed model trained for 30 minutes on the 2-core
development machine (shared with other work: 308 steps of 32 x 256 bytes), reaching a
validation loss of 1.24 nats/byte.

recur itself never needs Python; this script is how the bundled model was made:

    apt-get install -y bible-kjv python3-torch python3-numpy libopenblas0-pthread
    /usr/bin/python3 examples/train_demo_model.py --out /tmp/kjv --minutes 30
    build/recur convert /tmp/kjv/spec.json -o examples/models/kjv-mamba2.recur
    cp /tmp/kjv/expected_logits.f32 tests/data/kjv-mamba2.expected.f32
    cp /tmp/kjv/prompt.txt tests/data/kjv-mamba2.prompt.txt
"""

import argparse
import json
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PROMPT = b"And God said, Let there be"


def load_text():
    raw = subprocess.run(["bible", "-l100000", "gen1:1-rev22:21"], check=True,
                         capture_output=True).stdout.decode("ascii", errors="replace")
    verses = []
    for line in raw.splitlines():
        line = line.strip()
        head, _, rest = line.partition(" ")
        if head.isdigit() and rest:
            verses.append(rest.strip())
    return ("\n".join(verses) + "\n").encode("ascii", errors="replace")


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Mamba2Mixer(nn.Module):
    """Mamba-2 (n_groups = 1, norm_before_gate = False) as Hugging Face's Mamba2Mixer computes it."""

    def __init__(self, d_model, d_inner, d_state, head_dim, d_conv):
        super().__init__()
        self.d_inner, self.d_state, self.head_dim = d_inner, d_state, head_dim
        self.n_heads = d_inner // head_dim
        self.conv_dim = d_inner + 2 * d_state
        self.in_proj = nn.Linear(d_model, 2 * d_inner + 2 * d_state + self.n_heads, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, groups=self.conv_dim,
                                padding=d_conv - 1)
        dt = torch.exp(torch.rand(self.n_heads) * (math.log(0.1) - math.log(0.001)) +
                       math.log(0.001))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(torch.log(torch.empty(self.n_heads).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(self.n_heads))
        self.norm = RMSNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, u):
        b, l, _ = u.shape
        zxbcdt = self.in_proj(u)
        z, xbc, dt = torch.split(zxbcdt, [self.d_inner, self.conv_dim, self.n_heads], dim=-1)
        xbc = F.silu(self.conv1d(xbc.transpose(1, 2))[..., :l].transpose(1, 2))
        x, B, C = torch.split(xbc, [self.d_inner, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(dt + self.dt_bias)                      # (b, l, h)
        A = -torch.exp(self.A_log)                               # (h)
        x = x.view(b, l, self.n_heads, self.head_dim)
        # SSD, quadratic form: y_i = sum_{j<=i} exp(sum_{k=j+1..i} dt_k A) (C_i . B_j) dt_j x_j.
        a = (dt * A).transpose(1, 2)                             # (b, h, l)
        cs = torch.cumsum(a, dim=-1)
        seg = cs[..., :, None] - cs[..., None, :]                # (b, h, l, l)
        mask = torch.tril(torch.ones(l, l, dtype=torch.bool, device=u.device))
        decay = torch.exp(seg.masked_fill(~mask, -math.inf))
        scores = torch.einsum("bin,bjn->bij", C, B)              # (b, l, l)
        m = decay * scores[:, None]
        xdt = (x * dt[..., None]).transpose(1, 2)                # (b, h, l, p)
        y = torch.matmul(m, xdt).transpose(1, 2)                 # (b, l, h, p)
        y = y + x * self.D[:, None]
        y = y.reshape(b, l, self.d_inner)
        y = self.norm(y * F.silu(z))
        return self.out_proj(y)


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(256, cfg["d_model"])
        nn.init.normal_(self.embed.weight, std=0.02)
        self.norms = nn.ModuleList([RMSNorm(cfg["d_model"]) for _ in range(cfg["n_layers"])])
        self.mixers = nn.ModuleList([
            Mamba2Mixer(cfg["d_model"], cfg["d_inner"], cfg["d_state"], cfg["head_dim"],
                        cfg["d_conv"]) for _ in range(cfg["n_layers"])])
        self.norm_f = RMSNorm(cfg["d_model"])

    def forward(self, tokens):
        h = self.embed(tokens)
        for norm, mixer in zip(self.norms, self.mixers):
            h = h + mixer(norm(h))
        return self.norm_f(h) @ self.embed.weight.t()


def canonical_tensors(model):
    out = {"embed.weight": model.embed.weight, "norm_f.weight": model.norm_f.weight}
    for i, (norm, m) in enumerate(zip(model.norms, model.mixers)):
        p = f"layers.{i}."
        out[p + "norm.weight"] = norm.weight
        out[p + "mixer.in_proj.weight"] = m.in_proj.weight
        out[p + "mixer.conv1d.weight"] = m.conv1d.weight.squeeze(1)
        out[p + "mixer.conv1d.bias"] = m.conv1d.bias
        out[p + "mixer.dt_bias"] = m.dt_bias
        out[p + "mixer.A_log"] = m.A_log
        out[p + "mixer.D"] = m.D
        out[p + "mixer.norm.weight"] = m.norm.weight
        out[p + "mixer.out_proj.weight"] = m.out_proj.weight
    return {k: v.detach().to(torch.float32).contiguous().numpy() for k, v in out.items()}


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    meta = json.dumps(header, separators=(",", ":")).encode()
    meta += b" " * (-len(meta) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(meta)))
        f.write(meta)
        for blob in blobs:
            f.write(blob)


def write_spec(path, cfg, steps, loss):
    layer = {"kind": "mamba2", "d_inner": cfg["d_inner"], "d_state": cfg["d_state"],
             "d_conv": cfg["d_conv"], "n_heads": cfg["d_inner"] // cfg["head_dim"],
             "head_dim": cfg["head_dim"], "n_groups": 1, "chunk_size": 64,
             "norm_before_gate": False, "norm_eps": 1e-5, "repeat": cfg["n_layers"]}
    spec = {
        "format": "recur-spec", "version": 1, "architecture": "mamba2",
        "d_model": cfg["d_model"],
        "input": {"kind": "tokens", "vocab_size": 256},
        "output": {"kind": "logits"},
        "tie_embeddings": True,
        "final_norm": {"kind": "rmsnorm", "eps": 1e-5},
        "layers": [layer],
        "tokenizer": {"kind": "bytes"},
        "metadata": {
            "description": "byte-level Mamba-2 trained on the King James Bible "
                           "(examples/train_demo_model.py)",
            "training_text": "King James Version, Debian package bible-kjv-text; public domain",
            "training_steps": str(steps),
            "training_loss_nats_per_byte": f"{loss:.4f}",
        },
        "weights": "model.safetensors",
    }
    with open(path, "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (spec.json, model.safetensors)")
    ap.add_argument("--minutes", type=float, default=25, help="training time budget")
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    cfg = {"d_model": 128, "d_inner": 256, "d_state": 32, "head_dim": 32, "d_conv": 4,
           "n_layers": 4}
    text = np.frombuffer(load_text(), dtype=np.uint8)
    split = int(len(text) * 0.98)
    train, valid = torch.from_numpy(text[:split].astype(np.int64)), \
        torch.from_numpy(text[split:].astype(np.int64))
    model = Model(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"text: {len(text)} bytes; model: {n_params} parameters", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01,
                            betas=(0.9, 0.95))
    budget = args.minutes * 60
    start = time.time()
    step, ema = 0, None

    def batch(data, n):
        ix = torch.randint(0, len(data) - args.seq - 1, (n,))
        x = torch.stack([data[i:i + args.seq] for i in ix])
        y = torch.stack([data[i + 1:i + 1 + args.seq] for i in ix])
        return x, y

    while step < args.max_steps:
        elapsed = time.time() - start
        if elapsed > budget:
            break
        frac = elapsed / budget
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch(train, args.batch)
        loss = F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 50 == 0:
            print(f"step {step}  loss {ema:.3f}  lr {lr:.2e}  {elapsed / 60:.1f} min", flush=True)

    model.eval()
    with torch.no_grad():
        torch.manual_seed(0)
        x, y = batch(valid, 16)
        vloss = F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1)).item()
    print(f"done: {step} steps, validation loss {vloss:.3f} nats/byte", flush=True)

    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "model.safetensors"), canonical_tensors(model))
    write_spec(os.path.join(args.out, "spec.json"), cfg, step, vloss)

    # The reference logits for the prompt, in float64 from the same float32 weights.
    ref = Model(cfg).double()
    ref.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    with torch.no_grad():
        tokens = torch.tensor([list(PROMPT)], dtype=torch.int64)
        logits = ref(tokens)[0].to(torch.float32).numpy()
    logits.astype("<f4").tofile(os.path.join(args.out, "expected_logits.f32"))
    with open(os.path.join(args.out, "prompt.txt"), "wb") as f:
        f.write(PROMPT)
    print(f"wrote {args.out}/spec.json, model.safetensors, expected_logits.f32", flush=True)


if __name__ == "__main__":
    sys.exit(main())
