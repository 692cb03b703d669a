"""Minimal safetensors writer/reader (struct + json, no dependency).

Layout: u64 little-endian header length, JSON header (padded with spaces to
a multiple of 8), then every tensor's bytes contiguous, in name order.
"""

from __future__ import annotations

import json
import struct
from typing import Dict, Tuple

import numpy as np

_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "I64": np.dtype("<i8"), "I32": np.dtype("<i4")}
_NAMES = {v: k for k, v in _DTYPES.items()}


def write(path: str, tensors: Dict[str, np.ndarray], metadata: Dict[str, str]) -> None:
    header: Dict[str, object] = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        if np.dtype(dt) not in _NAMES:
            raise ValueError(f"unsupported dtype {arr.dtype} for {name}")
        data = arr.astype(dt, copy=False).tobytes()
        header[name] = {"dtype": _NAMES[np.dtype(dt)], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def read(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, spec in header.items():
        a, b = spec["data_offsets"]
        out[name] = np.frombuffer(data[base + a : base + b], dtype=_DTYPES[spec["dtype"]]).reshape(spec["shape"])
    return out, meta
