"""cifarlab.robustness: the CIFAR-10-C corruptions, corrupted test sets, and robustness scores of runs.

    corrupted = corrupt(images, "fog", severity=3, seed=0)        # uint8 (N, 3, 32, 32) in and out
    write_corrupted_set(images, labels, "data/CIFAR-10-C")        # <corruption>.npy, labels.npy
    from cifarlab.robustness.evaluation import evaluate_robustness, write_robustness
    result = evaluate_robustness("runs/quick")                     # accuracy per corruption x severity
    write_robustness("runs/quick", result)                         # robustness.json, heatmap, report.md
    from cifarlab.robustness.submission import write_submission   # id,label CSV (DL4DS Kaggle ids)

The corruptions follow the CIFAR version of Hendrycks & Dietterich's generation code
(hendrycks/robustness, make_cifar_c.py; constants per severity in `noise`, `blur`, `weather`,
`digital`), batched in torch, with Pillow only for JPEG and pixelation (as the original). Against
that code run on 128 CIFAR-10 test images at all five severities (tests/robustness/
published_changes.json, made by tests/robustness/make_published_stats.py), every corruption
changes images by the published average amount within 12% (all but frost and spatter's mud
within 3%), and the ones that draw nothing at random agree within one 8-bit level. What differs
from the published files:
- random draws come from torch generators seeded per (seed, corruption, severity), so no
  image is corrupted by the same noise as in the published files;
- frost blends a generated ice texture (`textures.frost_textures`) whose strength matches the
  published photographs at every severity (within 3.5%); `robustness make --frost-images DIR`
  uses the published photographs (frost1.png ... frost5.jpg) exactly as the published code does;
- motion blur (and snow's streaks) use a kernel written from ImageMagick's motion-blur
  definition (one-sided Gaussian along the angle, whole-pixel taps), measured within 3% of
  ImageMagick 6.9.11's change;
- spatter's water rims follow OpenCV's steps (Canny, the 5x5 distance transform, equalisation).
"""

from cifarlab.robustness.corruptions import (
           BENCHMARK,
           CORRUPTIONS,
           EXTRA,
           SEVERITIES,
           corrupt,
)
from cifarlab.robustness.dataset import (
           read_corruption,
           read_labels,
           write_corrupted_set,
)

__all__ = ["BENCHMARK", "CORRUPTIONS", "EXTRA", "SEVERITIES", "corrupt", "read_corruption", "read_labels",
           "write_corrupted_set"]
