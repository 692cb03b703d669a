"""Write small PyTorch parity fixtures for packages/backbone tests.

Usage (from the repository root):
    /usr/bin/python3 tools/reference/make_fixtures.py

Writes, for each fixture config, <fixtures>/<name>/{model,inputs,expected}.safetensors.
Deterministic: running it twice yields byte-identical files.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from vit_reference import VisionTransformer  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURES = os.path.join(REPO, "packages", "backbone", "test", "fixtures")
GENERATOR = "tools/reference/make_fixtures.py"
MAX_FILE_BYTES = 200 * 1024

FIXTURE_CONFIGS = [
    {
        "name": "tiny-vit",
        "batch": 4,
        "model": dict(img_size=16, patch_size=4, in_chans=3, num_classes=5, embed_dim=32,
                      depth=3, num_heads=2, mlp_ratio=4.0, qkv_bias=True, eps=1e-6),
    },
    {
        # mlp_ratio 2 keeps model.safetensors under 200 KB (ratio 4 would be ~260 KB)
        # and also exercises a non-default MLP hidden size.
        "name": "tiny-vit-3ch-p8",
        "batch": 2,
        "model": dict(img_size=16, patch_size=8, in_chans=3, num_classes=7, embed_dim=48,
                      depth=2, num_heads=3, mlp_ratio=2.0, qkv_bias=True, eps=1e-6),
    },
]


# --------------------------------------------------------------------------
# safetensors (hand-rolled; no safetensors package available)
# --------------------------------------------------------------------------

_DTYPES = {"F32": np.dtype("<f4"), "I32": np.dtype("<i4")}


def _to_numpy(t) -> Tuple[str, np.ndarray]:
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().contiguous().numpy()
    a = np.asarray(t)
    if a.dtype == np.float32:
        # np.array (not ascontiguousarray) so 0-rank tensors stay 0-rank
        return "F32", np.array(a, dtype=_DTYPES["F32"], order="C", copy=True)
    if a.dtype == np.int32:
        return "I32", np.array(a, dtype=_DTYPES["I32"], order="C", copy=True)
    raise TypeError(f"unsupported dtype {a.dtype}")


def save_safetensors(path: str, tensors: Dict[str, object], metadata: Dict[str, str]) -> None:
    header: Dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    blobs: List[bytes] = []
    offset = 0
    for name in sorted(tensors):
        dtype, arr = _to_numpy(tensors[name])
        data = arr.tobytes(order="C")
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((-len(hbytes)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)


def load_safetensors(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0, "header length not 8-aligned"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    out: Dict[str, np.ndarray] = {}
    spans = []
    for name, info in header.items():
        dt = _DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        assert e - b == count * dt.itemsize, f"{name}: size mismatch"
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"]).copy()
        spans.append((b, e))
    spans.sort()
    pos = 0
    for b, e in spans:
        assert b == pos, "hole or overlap in data section"
        pos = e
    assert pos == len(data), "trailing bytes after data section"
    return out, meta


def check_roundtrip(path: str, tensors: Dict[str, object], metadata: Dict[str, str]) -> None:
    got, meta = load_safetensors(path)
    assert meta == metadata, f"{path}: metadata mismatch"
    assert sorted(got) == sorted(tensors), f"{path}: tensor names mismatch"
    for name, t in tensors.items():
        dtype, want = _to_numpy(t)
        g = got[name]
        assert g.dtype == _DTYPES[dtype] and g.shape == want.shape, f"{path}:{name} dtype/shape"
        assert np.array_equal(g, want), f"{path}:{name} values differ"


# --------------------------------------------------------------------------
# independent functional forward (cross-check of vit_reference semantics)
# --------------------------------------------------------------------------

def functional_forward(sd: Dict[str, torch.Tensor], images_nhwc: torch.Tensor, cfg: dict) -> torch.Tensor:
    """Straightforward re-derivation from NHWC images using explicit patch
    extraction and per-head loops; should match VisionTransformer to ~1e-5."""
    b, hh, ww, c = images_nhwc.shape
    p, d, nh, eps = cfg["patch_size"], cfg["embed_dim"], cfg["num_heads"], cfg["eps"]
    g = hh // p
    dh = d // nh
    # patches in row-major (gy, gx); within a patch, flatten as (c, py, px) to match conv weight
    x = images_nhwc.reshape(b, g, p, g, p, c).permute(0, 1, 3, 5, 2, 4).reshape(b, g * g, c * p * p)
    w = sd["patch_embed.proj.weight"].reshape(d, c * p * p)
    x = x @ w.t() + sd["patch_embed.proj.bias"]
    x = torch.cat([sd["cls_token"].expand(b, 1, d), x], dim=1) + sd["pos_embed"]

    def ln(t, pre):
        mu = t.mean(-1, keepdim=True)
        var = ((t - mu) ** 2).mean(-1, keepdim=True)
        return (t - mu) / torch.sqrt(var + eps) * sd[pre + ".weight"] + sd[pre + ".bias"]

    def gelu(t):
        return 0.5 * t * (1.0 + torch.erf(t / (2.0 ** 0.5)))

    for i in range(cfg["depth"]):
        pre = f"blocks.{i}."
        h = ln(x, pre + "norm1")
        qkv = h @ sd[pre + "attn.qkv.weight"].t() + sd[pre + "attn.qkv.bias"]
        heads = []
        for j in range(nh):
            q = qkv[..., 0 * d + j * dh: 0 * d + (j + 1) * dh]
            k = qkv[..., 1 * d + j * dh: 1 * d + (j + 1) * dh]
            v = qkv[..., 2 * d + j * dh: 2 * d + (j + 1) * dh]
            a = torch.softmax(q @ k.transpose(1, 2) / (dh ** 0.5), dim=-1)
            heads.append(a @ v)
        o = torch.cat(heads, dim=-1) @ sd[pre + "attn.proj.weight"].t() + sd[pre + "attn.proj.bias"]
        x = x + o
        h = ln(x, pre + "norm2")
        h = gelu(h @ sd[pre + "mlp.fc1.weight"].t() + sd[pre + "mlp.fc1.bias"])
        x = x + h @ sd[pre + "mlp.fc2.weight"].t() + sd[pre + "mlp.fc2.bias"]
    x = ln(x, "norm")
    return x[:, 0] @ sd["head.weight"].t() + sd["head.bias"]


# --------------------------------------------------------------------------
# fixture generation
# --------------------------------------------------------------------------

def perturb_parameters(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "bias":
                p.copy_(0.05 * noise)
            elif leaf == "weight" and p.ndim == 1:  # LayerNorm gamma
                p.copy_(1.0 + 0.1 * noise)
            else:  # linear/conv weights, cls_token, pos_embed
                p.copy_(0.1 * noise)


def grad_param_names(depth: int) -> List[str]:
    last = depth - 1
    return [
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "blocks.0.attn.qkv.weight",
        f"blocks.{min(1, last)}.mlp.fc1.bias",
        f"blocks.{min(2, last)}.norm1.weight",
        "norm.weight",
        "head.weight",
        "head.bias",
    ]


def make_fixture(fx: dict) -> List[str]:
    cfg = fx["model"]
    name, batch = fx["name"], fx["batch"]
    out_dir = os.path.join(FIXTURES, name)
    os.makedirs(out_dir, exist_ok=True)

    torch.manual_seed(0)
    model = VisionTransformer(**cfg, drop_path_rate=0.0)
    perturb_parameters(model, seed=0)
    model.eval()

    gen = torch.Generator().manual_seed(1)
    s = cfg["img_size"]
    images = torch.randn((batch, s, s, cfg["in_chans"]), generator=gen, dtype=torch.float32)
    labels = torch.randint(0, cfg["num_classes"], (batch,), generator=gen, dtype=torch.int64)

    images_req = images.clone().requires_grad_(True)
    logits, block_outputs, attn_logits, final_cls = model.forward_intermediates(
        images_req.permute(0, 3, 1, 2)
    )
    loss = F.cross_entropy(logits, labels)
    model.zero_grad(set_to_none=True)
    loss.backward()

    # sanity checks
    with torch.no_grad():
        plain = model(images.permute(0, 3, 1, 2))
        assert torch.equal(plain, logits.detach()), "forward vs forward_intermediates"
        sd = {k: v.detach() for k, v in model.state_dict().items()}
        alt = functional_forward(sd, images, cfg)
        err = (alt - logits.detach()).abs().max().item()
        assert err < 1e-4, f"functional cross-check failed: {err}"
    # gradient cross-check w.r.t. images through the functional path
    sd_req = {k: v.detach().clone() for k, v in model.state_dict().items()}
    img_alt = images.clone().requires_grad_(True)
    F.cross_entropy(functional_forward(sd_req, img_alt, cfg), labels).backward()
    gerr = (img_alt.grad - images_req.grad).abs().max().item()
    assert gerr < 1e-5, f"functional grad cross-check failed: {gerr}"

    params = dict(model.named_parameters())
    meta_cfg = json.dumps(cfg, sort_keys=True)
    model_meta = {"format": "pt", "generator": GENERATOR, "config": meta_cfg}
    io_meta = {"format": "pt", "generator": GENERATOR, "config": meta_cfg, "layout": "NHWC"}

    model_tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    input_tensors = {"images": images, "labels": labels.to(torch.int32)}
    expected = {
        "logits": logits.detach(),
        "block_outputs": torch.stack([t.detach() for t in block_outputs]),
        "block_cls": torch.stack([t.detach()[:, 0] for t in block_outputs]),
        "attn_logits_block0": attn_logits[0].detach(),
        "final_cls": final_cls.detach(),
        "loss": loss.detach().reshape(()),
        "grad.images": images_req.grad.detach(),
    }
    for pname in grad_param_names(cfg["depth"]):
        expected["grad." + pname] = params[pname].grad.detach()

    files = []
    for fname, tensors, meta in (
        ("model.safetensors", model_tensors, model_meta),
        ("inputs.safetensors", input_tensors, io_meta),
        ("expected.safetensors", expected, io_meta),
    ):
        path = os.path.join(out_dir, fname)
        save_safetensors(path, tensors, meta)
        check_roundtrip(path, tensors, meta)
        size = os.path.getsize(path)
        assert size < MAX_FILE_BYTES, f"{path} is {size} bytes"
        files.append(path)

    print(f"[{name}] config={meta_cfg} batch={batch}")
    print(f"  loss={loss.item():.6f} logits[0]={[round(v, 4) for v in logits[0].tolist()]}"
          f" functional-check max|diff| logits={err:.2e} grad.images={gerr:.2e}")
    for path in files:
        got, _ = load_safetensors(path)
        print(f"  {os.path.relpath(path, REPO)} ({os.path.getsize(path)} B)")
        for k in sorted(got):
            print(f"    {k}: {got[k].dtype.str[1:]} {list(got[k].shape)}")
    return files


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    print(f"torch {torch.__version__}, numpy {np.__version__}")
    for fx in FIXTURE_CONFIGS:
        make_fixture(fx)


if __name__ == "__main__":
    main()
