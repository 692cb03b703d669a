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

    /usr/bin/python3 tools/reference/speed_reference.py [--steps 5] [--warmup 2] [--method vpt,ship]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fast_blas import blas_in_use, ensure_openblas  # noqa: E402

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--method", default="vpt,ship")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (set OMP/OPENBLAS_NUM_THREADS to match)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = torch.randn(args.batch, 3, 32, 32)
    labels = torch.randint(0, 10, (args.batch,))
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_in_use(),
            "warmup": args.warmup, "steps": args.steps}

    for method in args.method.split(","):
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
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            loss.backward()
            opt.step()

        model.train()  # drop-path rate is 0: train and eval compute the same thing
        seconds = timed(train_step, args.warmup, args.steps)
        n_train = sum(p.numel() for p in trainable)
        print(json.dumps({"impl": "pytorch", "method": method, "what": "train_step", "seconds": seconds,
                          "batch": args.batch, "trainable": n_train, **meta}), flush=True)

        model.eval()

        def forward():
            with torch.no_grad():
                fwd()

        seconds = timed(forward, args.warmup, args.steps)
        print(json.dumps({"impl": "pytorch", "method": method, "what": "forward", "seconds": seconds,
                          "batch": args.batch, **meta}), flush=True)


if __name__ == "__main__":
    main()
