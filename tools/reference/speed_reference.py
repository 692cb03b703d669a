"""PyTorch timing reference for ``scripts/bench-speed.ts`` (a benchmark, not a fixture generator).

Times one prompt-tuning training step (forward + cross-entropy + backward + AdamW step) and one forward pass of a
ViT-Tiny-like model (depth 12, dim 192, 3 heads, 32x32 px, patch 4 -> 65 tokens, 10 classes) at batch 64 on CPU
with one thread, for two methods:

* ``vpt``: 10 learned prompt tokens appended after the image tokens before block 0 (VPT-shallow style), carried
  through all blocks; backbone frozen, prompts + head trained.
* ``ship``: SHIP-like step (see shared/spec/ship.md sections 5-7) with one hierarchy starting at block 0, no
  attribute prompts: K SIP tokens inserted at block 0 and carried, 10 SSP tokens re-inserted (replacing the
  previous SSP outputs) before every block; decoupled attention (image rows: separate softmaxes over image keys and
  over prompt keys, mixed 0.9/0.1; prompt rows pass their LayerNorm-1 output through in blocks 0..depth-2, one joint
  softmax over all keys in the last block); prompt matching loss (weight 0.5) on the last block's output.

Weights are random (speed does not depend on them). Prints one JSON line per measurement:
``{"impl":"pytorch","method":...,"what":"train_step"|"forward","seconds":...,"batch":64,...}``.

    /usr/bin/python3 tools/reference/speed_reference.py [--steps 5] [--warmup 2] [--method vpt,ship] [--threads 1]

``--serve`` keeps the process alive for ``scripts/bench-speed.ts``, which interleaves it with other configurations:
it prints one ``{"kind": "info", ...}`` line, then answers JSON commands on stdin, one line each:
``{"cmd": "setup", "method": m}`` (build, warm up) -> ``{"kind": "ready", "method": m}``;
``{"cmd": "time", "method": m, "what": "train_step"|"forward"}`` -> ``{"kind": "sample", "seconds": s, "cpu": c}``
(wall time and the CPU time of all the process's threads);
``{"cmd": "quit"}``. Torch intra-op threads come from ``--threads``, OpenBLAS threads from ``OPENBLAS_NUM_THREADS``
(the info line reports both as the libraries see them, and the OpenBLAS core, i.e. its ISA path, for this CPU).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fast_blas import blas_in_use, ensure_openblas, openblas_runtime  # noqa: E402

if __name__ == "__main__":
    ensure_openblas("speed_reference")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from vit_reference import VisionTransformer  # noqa: E402

LAMBDA = 0.1  # decoupled-attention mix
PML_WEIGHT = 0.5
PML_TOPK = 10


def build_backbone(num_classes: int) -> VisionTransformer:
    vit = VisionTransformer(
        img_size=32, patch_size=4, in_chans=3, num_classes=num_classes, embed_dim=192, depth=12, num_heads=3
    )
    for p in vit.parameters():
        p.requires_grad_(False)
    for p in vit.head.parameters():
        p.requires_grad_(True)
    return vit


class VptShallow(nn.Module):
    """Prompts appended after CLS + patches, inserted once before block 0."""

    def __init__(self, vit: VisionTransformer, tokens: int) -> None:
        super().__init__()
        self.vit = vit
        self.prompt = nn.Parameter(torch.empty(1, tokens, vit.embed_dim).uniform_(-0.05, 0.05))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.vit.embed(images)
        x = torch.cat([x, self.prompt.expand(x.shape[0], -1, -1)], dim=1)
        for blk in self.vit.blocks:
            x = blk(x)
        x = self.vit.norm(x)
        return self.vit.head(x[:, 0])


def decoupled_attention(attn, h: torch.Tensor, n_img: int, full: bool):
    """Returns (attention sub-layer output before the residual, logits of the image + prompt query rows)."""
    b, n, d = h.shape
    qkv = attn.qkv(h).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]  # [B, H, N, dh]
    logits = (q[:, :, :n_img] @ k.transpose(-2, -1)) * attn.scale  # [B, H, N_img, N]
    i2i = logits[..., :n_img].softmax(dim=-1) @ v[:, :, :n_img]
    i2p = logits[..., n_img:].softmax(dim=-1) @ v[:, :, n_img:]
    z = ((1.0 - LAMBDA) * i2i + LAMBDA * i2p).transpose(1, 2).reshape(b, n_img, d)
    if full:
        prompt_logits = (q[:, :, n_img:] @ k.transpose(-2, -1)) * attn.scale  # [B, H, N_p, N]
        p = (prompt_logits.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n - n_img, d)
        logits = torch.cat([logits, prompt_logits], dim=2)
    else:
        p = h[:, n_img:]  # prompts issue no queries: LayerNorm-1 output passes through
    return attn.proj(torch.cat([z, p], dim=1)), logits


class ShipLike(nn.Module):
    def __init__(self, vit: VisionTransformer, sip: int, ssp: int) -> None:
        super().__init__()
        self.vit = vit
        d = vit.embed_dim
        self.sip = nn.Parameter(torch.empty(1, sip, d).uniform_(-0.05, 0.05))
        self.ssp = nn.Parameter(torch.empty(1, ssp, d).uniform_(-0.05, 0.05))
        self.n_ssp = ssp

    def forward(self, images: torch.Tensor, with_pml: bool):
        x = self.vit.embed(images)
        b, n_img = x.shape[0], x.shape[1]
        x = torch.cat([x, self.sip.expand(b, -1, -1)], dim=1)
        depth = len(self.vit.blocks)
        logits = None
        for i, blk in enumerate(self.vit.blocks):
            # Refresh the SSP: drop the previous block's SSP outputs (none before block 0), append the parameter.
            keep = x if i == 0 else x[:, : -self.n_ssp]
            x = torch.cat([keep, self.ssp.expand(b, -1, -1)], dim=1)
            a, logits = decoupled_attention(blk.attn, blk.norm1(x), n_img, full=i == depth - 1)
            x = x + blk.drop_path1(a)
            x = x + blk.drop_path2(blk.mlp(blk.norm2(x)))
        out = self.vit.head(self.vit.norm(x)[:, 0])
        if not with_pml:
            return out, None
        # PML: top-k image tokens by head-averaged CLS-query logits over image keys (no gradient through the choice).
        with torch.no_grad():
            idx = logits[:, :, 0, :n_img].mean(dim=1).topk(PML_TOPK, dim=-1).indices  # [B, k]
        z = x[:, :n_img]
        p = x[:, n_img:]
        chosen = torch.gather(z, 1, idx.unsqueeze(-1).expand(-1, -1, z.shape[-1]))  # [B, k, D]
        cos = F.normalize(p, dim=-1) @ F.normalize(chosen, dim=-1).transpose(1, 2)  # [B, N_p, k]
        pml = (1.0 - cos).min(dim=-1).values.mean()
        return out, pml


def timed(fn, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def build(method: str, images: torch.Tensor, labels: torch.Tensor):
    """The model of `method` and its two timed actions: one training step (AdamW) and one no-grad forward."""
    vit = build_backbone(10)
    if method == "vpt":
        model = VptShallow(vit, 10)
        loss_fn = lambda: F.cross_entropy(model(images), labels)  # noqa: E731
        fwd = lambda: model(images)  # noqa: E731
    elif method == "ship":
        model = ShipLike(vit, 10, 10)

        def loss_fn():
            out, pml = model(images, with_pml=True)
            return F.cross_entropy(out, labels) + PML_WEIGHT * pml

        fwd = lambda: model(images, with_pml=False)[0]  # noqa: E731
    else:
        raise SystemExit(f"unknown method {method!r} (known: vpt, ship)")
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3, weight_decay=0.0)

    def train_step():
        model.train()  # drop-path rate is 0: train and eval compute the same thing
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()

    def forward():
        model.eval()
        with torch.no_grad():
            fwd()

    return {"train_step": train_step, "forward": forward, "trainable": sum(p.numel() for p in trainable)}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def runtime_meta() -> dict:
    """What this process runs on: torch version and threads, the BLAS, its core (ISA path) and threads, ATen's ISA."""
    capability = next(
        (line.split(":", 1)[1].strip() for line in torch.__config__.show().splitlines()
         if "CPU capability usage" in line), "unknown")
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_in_use(),
            "aten_isa": capability, "cpu": cpu_model(), **openblas_runtime()}


def serve(args) -> None:
    torch.manual_seed(0)
    images = torch.randn(args.batch, 3, 32, 32)
    labels = torch.randint(0, 10, (args.batch,))
    print(json.dumps({"kind": "info", **runtime_meta()}), flush=True)
    models = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        method = cmd["method"]
        if cmd["cmd"] == "setup":
            models[method] = build(method, images, labels)
            for _ in range(args.warmup):
                models[method]["train_step"]()
                models[method]["forward"]()
            print(json.dumps({"kind": "ready", "method": method, "trainable": models[method]["trainable"]}),
                  flush=True)
        elif cmd["cmd"] == "time":
            fn = models[method][cmd["what"]]
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            t1, c1 = time.perf_counter(), time.process_time()
            # cpu: CPU time of every thread of this process; with one thread, what the step costs on an idle core.
            print(json.dumps({"kind": "sample", "seconds": t1 - t0, "cpu": c1 - c0}), flush=True)
        else:
            raise SystemExit(f"unknown command {cmd!r}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--method", default="vpt,ship")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (OpenBLAS: OPENBLAS_NUM_THREADS)")
    ap.add_argument("--serve", action="store_true", help="answer timing commands on stdin (bench-speed.ts)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    if args.serve:
        serve(args)
        return
    torch.manual_seed(0)
    images = torch.randn(args.batch, 3, 32, 32)
    labels = torch.randint(0, 10, (args.batch,))
    meta = {**runtime_meta(), "warmup": args.warmup, "steps": args.steps}
    for method in args.method.split(","):
        actions = build(method, images, labels)
        for what in ("train_step", "forward"):
            seconds = timed(actions[what], args.warmup, args.steps)
            extra = {"trainable": actions["trainable"]} if what == "train_step" else {}
            print(json.dumps({"impl": "pytorch", "method": method, "what": what, "seconds": seconds,
                              "batch": args.batch, **extra, **meta}), flush=True)


if __name__ == "__main__":
    main()
