"""cifarlab.robustness: the CIFAR-10-C corruptions, corrupted test sets, and robustness scores of runs.

    corrupted = corrupt(images, "fog", severity=3, seed=0)           # uint8 in, uint8 out
    write_corrupted_set(images, labels, "out/CIFAR-10-C")            # <corruption>.npy, labels.npy
    result = evaluate_run("runs/quick")                               # robustness.json, heatmap, report
"""

from cifarlab.robustness.corruptions import BENCHMARK, CORRUPTIONS, EXTRA, SEVERITIES, corrupt

__all__ = ["BENCHMARK", "CORRUPTIONS", "EXTRA", "SEVERITIES", "corrupt"]
