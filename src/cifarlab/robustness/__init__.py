"""cifarlab.robustness: the CIFAR-10-C corruptions, corrupted test sets, and robustness scores of runs.

    corrupted = corrupt(images, "fog", severity=3, seed=0)        # uint8 (N, 3, 32, 32) in and out
    write_corrupted_set(images, labels, "data/CIFAR-10-C")        # <corruption>.npy, labels.npy
    from cifarlab.robustness.evaluation import evaluate_robustness, write_robustness
    result = evaluate_robustness("runs/quick")                     # accuracy per corruption x severity
    write_robustness("runs/quick", result)                         # robustness.json, heatmap, report.md
    from cifarlab.robustness.submission import write_submission   # id,label CSV (DL4DS Kaggle ids)

The corruptions follow the CIFAR version of Hendrycks & Dietterich's generation code
(constants per severity in `noise`, `blur`, `weather`, `digital`), batched in torch, with
Pillow only for JPEG and pixelation (as the original). Against that code run on 1,000
CIFAR-10 test images (severities 1, 3, 5; all but motion blur, snow and frost, which need
ImageMagick or the photographs), the corruptions that draw nothing at random (defocus, zoom
and Gaussian blur, brightness, contrast, saturate, pixelate, JPEG) agree to within one 8-bit
level on every value (mean absolute difference at most 0.08 levels), and the random ones
change images by the same amount on average (mean absolute change within 1.4%, spatter
within 4%). What differs from the published files:
- random draws come from torch generators seeded per (seed, corruption, severity), so no
  image is corrupted by the same noise as in the published files;
- frost blends procedural ice textures (`textures.frost_textures`), not the benchmark's six
  photographs, which cifarlab does not ship: same blend weights and crops, but a texture
  of its own (thin needles rather than broad patches; brightness chosen, not measured);
- motion blur (and snow's streaks) use a kernel written from ImageMagick's motion-blur
  definition (one-sided Gaussian along the angle, whole-pixel taps), not ImageMagick itself;
  not measured against ImageMagick here;
- spatter's water rims use a simplified edge detector (Sobel magnitude, Canny's thresholds,
  no full hysteresis) and an exact Euclidean distance instead of OpenCV's 5x5 approximation.
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
