"""Training batches and the fixed held-out set, drawn from a mask bank."""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from augment import colourise, geometric
from corpus import Bank

FAMILIES = ("fractal", "contour", "digit")


class Sampler:
    """Draws labelled, coloured, augmented batches.

    Each sample picks a family with probability ``weights`` (fractal, contour,
    digit), then a class uniformly within the family, then a random bank
    instance of that class. Labels live in one space: fractal classes first,
    then contour classes, then digits 0-9.
    """

    def __init__(self, bank: Bank, weights: Sequence[float], seed: int) -> None:
        self.bank = bank
        w = np.asarray(weights, dtype=np.float64)
        self.weights = w / w.sum()
        self.rng = np.random.default_rng([seed, 100])
        self.g = torch.Generator().manual_seed(seed * 1000003 + 7)
        sizes = [k for _, k in bank.families]
        self.offsets = np.cumsum([0] + sizes[:-1])
        self.num_classes = int(sum(sizes))
        self._digit_by_class = [np.flatnonzero(bank.digit_train_labels == d) for d in range(10)]

    def state(self) -> Dict:
        return {"rng": self.rng.bit_generator.state, "g": self.g.get_state()}

    def load_state(self, s: Dict) -> None:
        self.rng.bit_generator.state = s["rng"]
        self.g.set_state(s["g"])

    def batch(self, n: int, strength: float = 1.0, plain_p: float = 0.0) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images [n, 3, 32, 32], labels [n], family index [n]).

        ``strength`` in [0, 1] is the curriculum difficulty: colour strength and polarity (see ``colourise``)
        and the amount of geometric jitter; ``plain_p``: share of plain white-on-black samples."""
        fam = self.rng.choice(3, size=n, p=self.weights)
        imgs: List[torch.Tensor] = []
        labels: List[np.ndarray] = []
        fams: List[np.ndarray] = []
        b = self.bank
        for f in range(3):
            k = int((fam == f).sum())
            if k == 0:
                continue
            if f == 2:
                cls = self.rng.integers(0, 10, size=k)
                idx = np.array([self._digit_by_class[c][self.rng.integers(len(self._digit_by_class[c]))] for c in cls])
                m = b.digit_train[idx]
                geo = dict(max_rot_deg=10.0, flip=False)
            else:
                src = b.fractal_train if f == 0 else b.contour_train
                cls = self.rng.integers(0, src.shape[0], size=k)
                inst = self.rng.integers(0, src.shape[1], size=k)
                m = src[cls, inst]
                geo = dict(max_rot_deg=30.0, flip=True)
            mt = torch.from_numpy(m).float().div_(255.0).unsqueeze(1)
            imgs.append(geometric(mt, self.g, train=True, amount=strength, **geo))
            labels.append(cls + self.offsets[f])
            fams.append(np.full(k, f))
        m = torch.cat(imgs)
        x = colourise(m, self.g, strength, plain_p)
        y = torch.from_numpy(np.concatenate(labels)).long()
        fm = torch.from_numpy(np.concatenate(fams)).long()
        return x, y, fm


def heldout(bank: Bank, seed: int = 12345, strength: float = 1.0) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """Fixed held-out set per family: unseen bank instances / MNIST test digits,
    whole canvas (no crop, rotation or flip), random colouring from a fixed seed
    (``strength`` 0: plain white-on-black instead)."""
    g = torch.Generator().manual_seed(seed)
    off = 0
    out = {}
    for name, src_test in (("fractal", bank.fractal_test), ("contour", bank.contour_test)):
        k, per = src_test.shape[:2]
        m = torch.from_numpy(src_test.reshape(k * per, *src_test.shape[2:])).float().div_(255.0).unsqueeze(1)
        y = torch.arange(k).repeat_interleave(per) + off
        x = colourise(geometric(m, g, 0.0, False, train=False), g, strength)
        out[name] = (x, y)
        off += k
    m = torch.from_numpy(bank.digit_test).float().div_(255.0).unsqueeze(1)
    x = colourise(geometric(m, g, 0.0, False, train=False), g, strength)
    out["digit"] = (x, torch.from_numpy(bank.digit_test_labels).long() + off)
    return out
