"""How `published_changes.json` was made: the published CIFAR-10-C code's mean change per corruption.

The table holds, for every corruption and severity, the mean absolute pixel change (8-bit
levels) that the published generation code (Hendrycks & Dietterich, hendrycks/robustness,
ImageNet-C/create_c/make_cifar_c.py) makes on a fixed set of CIFAR-10 test images. The
published code and its frost photographs are not part of cifarlab; this script runs a copy
of them that you supply, and stores only the numbers.

Two steps, in two environments:

    # 1. the test images, with cifarlab's own environment (CIFARLAB_DATA set):
    python tests/robustness/make_published_stats.py images --out /tmp/cifar_c_ref/images.npy
    # 2. the statistics, in a separate environment holding what the published code imports:
    #    pip install "numpy<2" scipy scikit-image opencv-python-headless pillow wand
    #    (and ImageMagick's MagickWand library, e.g. Debian's libmagickwand-6.q16-6)
    python tests/robustness/make_published_stats.py stats --published /tmp/cifar_c_ref/make_cifar_c.py \
        --images /tmp/cifar_c_ref/images.npy --out tests/robustness/published_changes.json

Step 2 runs the published corruption functions unchanged (the script's top-level definitions,
without its torch/torchvision data loading and its loop over the data set), with two shims for library versions
newer than the code: scikit-image's `gaussian(multichannel=True)` becomes `channel_axis=-1`,
and `random_noise` draws from numpy's global generator so a seed fixes it.
The frost photographs must lie beside make_cifar_c.py, where it reads them. Each random
corruption is run `DRAWS` times with numpy seeds 0, 1, ... and the mean change averaged, so
the table holds the expected change on these images rather than one draw's.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

# The images: the first COUNT of a seeded permutation of the CIFAR-10 test split (cifarlab's order).
IMAGE_SEED = 0
COUNT = 128
DRAWS = 4
# cifarlab's corruptions in its order; the published functions carry the same names.
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
    "speckle_noise", "gaussian_blur", "spatter", "saturate",
)
DETERMINISTIC = {"defocus_blur", "zoom_blur", "gaussian_blur", "brightness", "contrast", "saturate", "pixelate",
                 "jpeg_compression"}
# The published script's own data loading, left out: it imports these and reads CIFAR-10 from its authors' paths.
_LEFT_OUT_MODULES = ("torch", "torchvision")


def image_indices(total: int = 10_000) -> list[int]:
    """Indices into the test split of the images the table was measured on."""
    return np.random.default_rng(IMAGE_SEED).permutation(total)[:COUNT].tolist()


def write_images(out: Path) -> None:
    """Step 1: the chosen CIFAR-10 test images as uint8 (COUNT, 32, 32, 3)."""
    from cifarlab.data import load_dataset

    images = load_dataset("cifar10", download=False).test_images[image_indices()]
    np.save(out, images.permute(0, 2, 3, 1).contiguous().numpy())
    print(f"wrote {out}")


def _load_published(path: Path) -> dict:
    """The published corruption functions, as a namespace, with the library shims applied."""
    import skimage
    from PIL import Image
    from skimage import filters, util

    namespace: dict = {"np": np, "Image": Image, "__name__": "published"}
    body = ast.Module(body=_definitions(ast.parse(path.read_text())), type_ignores=[])
    exec(compile(body, str(path), "exec"), namespace)  # the user's own copy of the published code

    def gaussian(image, sigma=1, multichannel=None, **options):
        if multichannel:
            options["channel_axis"] = -1
        return filters.gaussian(image, sigma=sigma, **options)

    def random_noise(image, **options):
        return util.random_noise(image, rng=np.random.randint(2**31), **options)

    namespace["gaussian"] = gaussian
    namespace["sk"] = SimpleNamespace(util=SimpleNamespace(random_noise=random_noise), color=skimage.color)
    return namespace


def _definitions(tree: ast.Module) -> list[ast.stmt]:
    """The script's top-level statements before its loop over the data set, less its torch and torchvision
    imports and every statement that uses a name they bind."""
    left_out: set[str] = set()
    kept = []
    for node in tree.body:
        if isinstance(node, ast.For):
            break
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
            if any(module.split(".")[0] in _LEFT_OUT_MODULES for module in modules):
                left_out.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
                continue
        if any(isinstance(name, ast.Name) and name.id in left_out for name in ast.walk(node)):
            continue
        kept.append(node)
    return kept


def _mean_change(function: Callable, images: np.ndarray, severity: int) -> float:
    from PIL import Image

    changed = np.stack([np.uint8(function(Image.fromarray(image), severity)) for image in images])
    return float(np.abs(changed.astype(np.float64) - images.astype(np.float64)).mean())


def write_stats(published: Path, images_path: Path, out: Path) -> None:
    """Step 2: run every published corruption at every severity on the images; write the table."""
    images = np.load(images_path)
    namespace = _load_published(published)
    os.chdir(published.parent)  # frost reads ./frost1.png ...
    table: dict[str, list[float]] = {}
    for name in CORRUPTIONS:
        draws = 1 if name in DETERMINISTIC else DRAWS
        per_severity = []
        for severity in range(1, 6):
            changes = []
            for draw in range(draws):
                np.random.seed(draw)
                changes.append(_mean_change(namespace[name], images, severity))
            per_severity.append(round(float(np.mean(changes)), 3))
        table[name] = per_severity
        print(name, per_severity, flush=True)
    record = {
        "what": "mean absolute pixel change (8-bit levels) of the published CIFAR-10-C code, severities 1-5",
        "source": "hendrycks/robustness, ImageNet-C/create_c/make_cifar_c.py, run by make_published_stats.py",
        "libraries": _library_versions(),
        "draws_per_random_corruption": DRAWS,
        "images": {"dataset": "cifar10", "split": "test", "indices": image_indices()},
        "changes": table,
    }
    # One line per top-level entry and per corruption: a diff of a new table reads row by row.
    lines = [f" {json.dumps(key)}: {json.dumps(value)}" for key, value in record.items() if key != "changes"]
    rows = [f"  {json.dumps(name)}: {json.dumps(changes)}" for name, changes in table.items()]
    lines.append(' "changes": {\n' + ",\n".join(rows) + "\n }")
    out.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {out}")


def _library_versions() -> dict[str, str]:
    import cv2
    import scipy
    import skimage
    from wand.version import MAGICK_VERSION

    return {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-image": skimage.__version__,
            "opencv": cv2.__version__, "imagemagick": MAGICK_VERSION.split(" https")[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    images = steps.add_parser("images", help="write the chosen CIFAR-10 test images (cifarlab's environment)")
    images.add_argument("--out", type=Path, required=True)
    stats = steps.add_parser("stats", help="run the published code on them and write the table")
    stats.add_argument("--published", type=Path, required=True, help="make_cifar_c.py, frost photographs beside it")
    stats.add_argument("--images", type=Path, required=True)
    stats.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.step == "images":
        write_images(args.out)
    else:
        write_stats(args.published.resolve(), args.images.resolve(), args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
