"""Writes PNG previews of the corpus: grey bank masks and coloured training batches.

    /usr/bin/python3 tools/pretrain/preview.py [--out tools/pretrain/cache/preview]
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from batches import Sampler  # noqa: E402
from corpus import CorpusConfig, build_bank  # noqa: E402
from augment import to_uint8_rgb  # noqa: E402


def write_png(path: str, img: np.ndarray) -> None:
    """img uint8 [H, W] or [H, W, 3]."""
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def grid(tiles: np.ndarray, cols: int, pad: int = 1) -> np.ndarray:
    n, h, w = tiles.shape[:3]
    rows = (n + cols - 1) // cols
    shape = (rows * (h + pad) + pad, cols * (w + pad) + pad) + tiles.shape[3:]
    out = np.full(shape, 128, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = tiles[i]
    return out


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(here, "cache", "preview"))
    ap.add_argument("--per-class", type=int, default=8)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    bank = build_bank(CorpusConfig(), os.path.join(here, "cache"))
    k = args.per_class
    write_png(os.path.join(args.out, "fractal_masks.png"), grid(bank.fractal_train[:, :k].reshape(-1, 64, 64), k * 2))
    write_png(os.path.join(args.out, "contour_masks.png"), grid(bank.contour_train[:, :k].reshape(-1, 64, 64), k * 2))
    s = Sampler(bank, (0.4, 0.3, 0.3), seed=0)
    x, y, f = s.batch(256)
    order = np.argsort(y.numpy(), kind="stable")
    rgb = to_uint8_rgb(x).numpy()[order]
    big = np.repeat(np.repeat(rgb, 2, axis=1), 2, axis=2)
    write_png(os.path.join(args.out, "train_batch.png"), grid(big, 16))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
