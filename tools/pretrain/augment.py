"""On-the-fly colouring and geometric augmentation of grey masks (torch, batched).

A mask m in [0, 1] becomes an RGB image ``bg * (1 - m) + fg * m`` where the
background is a solid colour, a linear two-colour gradient or a smooth random
colour texture (a solid colour plus low-frequency colour noise), and the foreground a solid colour or a gradient; colours are
drawn uniformly in RGB with a minimum fg/bg distance so the shape stays
visible. Then: random inversion, random greyscale, a blend with a plain
black/white rendering (colour curriculum, see ``colourise``), Gaussian pixel
noise.

Geometry (before colouring, applied to the mask with one ``grid_sample``):
mild random-resized-crop style zoom (shown side ZOOM of the canvas, aspect
jitter ASPECT), translation, rotation (fractals and contours +-30 degrees,
digits +-10 degrees) and horizontal flips (not for digits). Stronger
geometry (zoom 0.6-1.3, any rotation) made learning several times slower at
the budgets used here (see ATTEMPTS.md).

Output images are NCHW float32 in [-1, 1], i.e. ``(x - 0.5) / 0.5`` of RGB in
[0, 1] (mean = std = 0.5 per channel).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

OUT = 32
MEAN = 0.5
STD = 0.5


ZOOM = (0.8, 1.15)  # side of the shown window, in canvas units (<1 zooms in)
ASPECT = 1.1  # aspect-ratio jitter, log-uniform in [1/ASPECT, ASPECT]
SHIFT = 0.1  # extra translation, in half-canvas units


def geometric(
    masks: torch.Tensor, g: torch.Generator, max_rot_deg: float, flip: bool, train: bool, amount: float = 1.0
) -> torch.Tensor:
    """masks float [B, 1, S, S] in [0, 1] -> [B, 1, OUT, OUT]; ``amount`` in [0, 1] scales every
    geometric jitter (curriculum: 0 = identity)."""
    b = masks.shape[0]
    if not train:
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0] = 1.0
        theta[:, 1, 1] = 1.0
    else:
        u = torch.rand(b, 6, generator=g)
        a = float(amount)
        lo, hi = 1 + a * (ZOOM[0] - 1), 1 + a * (ZOOM[1] - 1)
        side = lo + (hi - lo) * u[:, 0]
        log_ar = (u[:, 1] - 0.5) * 2 * math.log(ASPECT) * a
        sx = side * torch.exp(log_ar / 2)
        sy = side * torch.exp(-log_ar / 2)
        room_x = (1 - sx).clamp(min=0) + SHIFT * a
        room_y = (1 - sy).clamp(min=0) + SHIFT * a
        tx = (u[:, 2] * 2 - 1) * room_x
        ty = (u[:, 3] * 2 - 1) * room_y
        ang = (u[:, 4] * 2 - 1) * math.radians(max_rot_deg) * a
        fx = torch.where((u[:, 5] < 0.5 * a) & torch.tensor(flip), -1.0, 1.0)
        cos, sin = torch.cos(ang), torch.sin(ang)
        theta = torch.stack(
            [
                torch.stack([sx * cos * fx, -sy * sin, tx], dim=1),
                torch.stack([sx * sin * fx, sy * cos, ty], dim=1),
            ],
            dim=1,
        )
    grid = F.affine_grid(theta, [b, 1, OUT, OUT], align_corners=False)
    if masks.shape[-1] >= 2 * OUT:
        # anti-alias before sampling a 2x bigger canvas
        masks = F.avg_pool2d(masks, 2)
    return F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _colour_far(g: torch.Generator, ref: torch.Tensor, min_dist: float) -> torch.Tensor:
    """Random RGB colours [B, 3] at L2 distance >= min_dist from ref [B, 3]."""
    c = torch.rand(ref.shape, generator=g)
    for _ in range(8):
        bad = (c - ref).norm(dim=1) < min_dist
        if not bool(bad.any()):
            break
        c[bad] = torch.rand((int(bad.sum()), 3), generator=g)
    bad = (c - ref).norm(dim=1) < min_dist
    c[bad] = 1.0 - ref[bad].round()  # the farthest corner of the RGB cube
    return c


def _gradient(g: torch.Generator, b: int, c0: torch.Tensor, c1: torch.Tensor) -> torch.Tensor:
    """Linear gradient from c0 to c1 [B, 3] along a random direction -> [B, 3, OUT, OUT]."""
    ang = torch.rand(b, generator=g) * 2 * math.pi
    lin = torch.linspace(-1, 1, OUT)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    t = (xx[None] * torch.cos(ang)[:, None, None] + yy[None] * torch.sin(ang)[:, None, None]) / math.sqrt(2)
    t = (t + 1) / 2  # [B, H, W] in [0, 1]
    return c0[:, :, None, None] * (1 - t[:, None]) + c1[:, :, None, None] * t[:, None]


def colourise(m: torch.Tensor, g: torch.Generator, strength: float = 1.0, plain_p: float = 0.0) -> torch.Tensor:
    """m [B, 1, OUT, OUT] in [0, 1] -> normalised RGB [B, 3, OUT, OUT].

    ``strength`` in [0, 1] blends a plain version (white shape on black,
    inverted with probability ``strength / 2``) with the fully coloured one:
    ``(1 - s) * plain + s * coloured``; with probability ``plain_p`` a sample is
    plain (s = 0). Training ramps ``strength`` from 0 to 1 (a curriculum: a
    ViT trained from scratch on fully random colours from step 0 stayed at the
    label prior; random polarity alone slowed early learning ~3x), held-out
    sets use strength 1 (and 0 for the "plain" report).
    """
    b = m.shape[0]
    u = torch.rand(b, 8, generator=g)
    bg0 = torch.rand(b, 3, generator=g)
    bg1 = torch.rand(b, 3, generator=g)
    solid = bg0[:, :, None, None].expand(b, 3, OUT, OUT)
    grad = _gradient(g, b, bg0, bg1)
    cells = 2 + int(torch.randint(0, 5, (1,), generator=g))
    amp = (0.2 + 0.4 * torch.rand(b, generator=g))[:, None, None, None]
    tex = bg0[:, :, None, None] + (torch.rand(b, 3, cells, cells, generator=g) - 0.5) * amp
    tex = F.interpolate(tex, size=(OUT, OUT), mode="bicubic", align_corners=False).clamp(0, 1)
    kind = u[:, 0]
    bg = torch.where((kind < 0.35)[:, None, None, None], solid, torch.where((kind < 0.7)[:, None, None, None], grad, tex))
    bg_mean = bg.mean(dim=(2, 3))
    fg0 = _colour_far(g, bg_mean, 0.45)
    fg1 = _colour_far(g, bg_mean, 0.45)
    fg_grad = _gradient(g, b, fg0, fg1)
    fg = torch.where((u[:, 1] < 0.7)[:, None, None, None], fg0[:, :, None, None].expand(b, 3, OUT, OUT), fg_grad)
    img = bg * (1 - m) + fg * m
    inv = (u[:, 2] < 0.2)[:, None, None, None]
    img = torch.where(inv, 1 - img, img)
    grey = (u[:, 3] < 0.1)[:, None, None, None]
    img = torch.where(grey, img.mean(dim=1, keepdim=True).expand_as(img), img)
    plain = m.expand(b, 3, OUT, OUT)
    plain = torch.where((u[:, 5] < 0.5 * float(strength))[:, None, None, None], 1 - plain, plain)
    s = torch.where(u[:, 6] < plain_p, 0.0, float(strength))[:, None, None, None]
    img = (1 - s) * plain + s * img
    noise = torch.randn(img.shape, generator=g) * (u[:, 4] * 0.05)[:, None, None, None]
    img = (img + noise).clamp(0, 1)
    return (img - MEAN) / STD


def to_uint8_rgb(x: torch.Tensor) -> torch.Tensor:
    """Normalised NCHW -> uint8 NHWC (for previews)."""
    return ((x * STD + MEAN).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
