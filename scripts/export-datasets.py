#!/usr/bin/env python3
"""Exports the real image data the demo and the learning checks use, from data that Debian packages bundle
(nothing is downloaded):

- scikit-learn's digits (`sklearn.datasets.load_digits`: 1797 real 8x8 handwritten digits, 4 bits per pixel,
  the UCI "Optical Recognition of Handwritten Digits" test set), upsampled to 32x32 with bilinear
  interpolation (torch.nn.functional.interpolate, align_corners=False), scaled 0..16 -> 0..255, grey
  replicated to RGB, as uint8 (N, 32, 32, 3), split 1297 / 500 stratified by class with a fixed seed:
    digits-train.npy  digits-train-labels.npy (int64)   digits-test.npy  digits-test-labels.npy (int64)
- scikit-learn's two sample photos (`load_sample_images`: china.jpg, flower.jpg, 427x640), centre-cropped to a
  square and resized with PIL bilinear (antialiased):  photos.npy (2, 224, 224, 3)  photos-32.npy (2, 32, 32, 3)
- datasets.json describing them.

Usage: /usr/bin/python3 scripts/export-datasets.py <outDir>
Needs Debian packages python3-sklearn, python3-pil, python3-torch (and python3-numpy, which they pull in).
Idempotent: a stamp of this script and the library versions skips the work when the outputs are current.
Every file is written to a temporary name in <outDir> and renamed into place.
"""
import hashlib
import json
import os
import sys
import tempfile

import numpy as np

SPLIT_SEED = 0
TEST_SIZE = 500
DIGITS_SIDE = 32
PHOTO_SIDES = {"photos": 224, "photos-32": 32}
OUTPUTS = ["digits-train.npy", "digits-train-labels.npy", "digits-test.npy", "digits-test-labels.npy",
           "digits16-train.npy", "digits16-train-labels.npy", "digits16-test.npy", "digits16-test-labels.npy",
           "photos.npy", "photos-32.npy", "datasets.json"]


def atomic_write(path: str, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_npy(path: str, arr: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(arr), allow_pickle=False))


def digits_32(images_8x8: np.ndarray, side: int = DIGITS_SIDE) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(images_8x8.astype(np.float32))[:, None]  # (N, 1, 8, 8), values 0..16
    up = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    grey = torch.clamp(torch.round(up * (255.0 / 16.0)), 0, 255).to(torch.uint8)[:, 0]
    return grey[..., None].expand(-1, -1, -1, 3).contiguous().numpy()  # (N, 32, 32, 3)


def square_resize(image: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = Image.fromarray(image[top:top + s, left:left + s])
    return np.asarray(crop.resize((side, side), Image.BILINEAR))


def stamp_of() -> str:
    import PIL
    import sklearn
    import torch

    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    h.update(f"{np.__version__} {sklearn.__version__} {torch.__version__} {PIL.__version__}".encode())
    return h.hexdigest()[:16]


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python3 scripts/export-datasets.py <outDir>")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    stamp_path = os.path.join(out, ".export-datasets.stamp")
    stamp = stamp_of()
    if all(os.path.exists(os.path.join(out, f)) for f in OUTPUTS) and os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if f.read().strip() == stamp:
                print(f"export-datasets: {out} is up to date")
                return

    from sklearn.datasets import load_digits, load_sample_images
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits_32(digits.images)
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_SIZE, stratify=labels, random_state=SPLIT_SEED)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    save_npy(os.path.join(out, "digits-train.npy"), images[train_idx])
    save_npy(os.path.join(out, "digits-train-labels.npy"), labels[train_idx])
    save_npy(os.path.join(out, "digits-test.npy"), images[test_idx])
    save_npy(os.path.join(out, "digits-test-labels.npy"), labels[test_idx])
    # The same split at 16×16 (the originals are 8×8): the demo trains and evaluates online at this size.
    images16 = digits_32(digits.images, 16)
    save_npy(os.path.join(out, "digits16-train.npy"), images16[train_idx])
    save_npy(os.path.join(out, "digits16-train-labels.npy"), labels[train_idx])
    save_npy(os.path.join(out, "digits16-test.npy"), images16[test_idx])
    save_npy(os.path.join(out, "digits16-test-labels.npy"), labels[test_idx])

    photos = load_sample_images()
    for name, side in PHOTO_SIDES.items():
        save_npy(os.path.join(out, name + ".npy"), np.stack([square_resize(im, side) for im in photos.images]))

    manifest = {
        "digits": {
            "source": "sklearn.datasets.load_digits (UCI Optical Recognition of Handwritten Digits, 8x8, 0..16)",
            "transform": "bilinear upsample to 32x32 (torch interpolate, align_corners=False), x*255/16, grey->RGB",
            "classes": [str(c) for c in range(10)],
            "split": {"method": "sklearn train_test_split, stratified", "test_size": TEST_SIZE, "random_state": SPLIT_SEED},
            "train": {"images": "digits-train.npy", "labels": "digits-train-labels.npy", "count": int(len(train_idx)),
                      "per_class": np.bincount(labels[train_idx], minlength=10).tolist()},
            "test": {"images": "digits-test.npy", "labels": "digits-test-labels.npy", "count": int(len(test_idx)),
                     "per_class": np.bincount(labels[test_idx], minlength=10).tolist()},
            "shape": [DIGITS_SIDE, DIGITS_SIDE, 3],
        },
        "photos": {
            "source": "sklearn.datasets.load_sample_images (china.jpg, flower.jpg, 427x640)",
            "files": [os.path.basename(f) for f in photos.filenames],  # scikit-learn >= 1.3 gives full paths
            "transform": "centre square crop, PIL bilinear resize",
            "arrays": {name + ".npy": [len(photos.images), side, side, 3] for name, side in PHOTO_SIDES.items()},
        },
    }
    atomic_write(os.path.join(out, "datasets.json"), lambda f: f.write((json.dumps(manifest, indent=1) + "\n").encode()))
    atomic_write(stamp_path, lambda f: f.write((stamp + "\n").encode()))
    print(f"export-datasets: wrote digits ({len(train_idx)} train / {len(test_idx)} test) and {len(photos.images)} photos to {out}")


if __name__ == "__main__":
    main()
