"""Would more test-time augmentation views lift a trained run? Test top-1 under several view weightings.

For each run folder, the test images are predicted once per view, with the run's own evaluation settings
(precision, memory format, geometry): the image shifted by (dy, dx) in {-1, 0, 1}^2 with reflect padding
(as `flip_translate` shifts), each with and without the horizontal mirror, 18 views. The softmax
outputs are then averaged with these weights:

- `none`, `flip`, `flip_translate`: cifarlab's own TTA modes, rebuilt from the views (the run's own
  mode must give the top-1 of its eval_test.json; the script checks it and stops if not);
- `shifts9_uniform`: all 18 views, 1/18 each;
- `shifts9_centre`: half of the weight on the unshifted pair, half shared by the 16 shifted views.

Nothing is trained or written; the time goes to the 18 prediction passes of the 10,000 test images
(about 2 minutes per fast94-sized run on the 2-core CPU).

    python bench/tta_views.py runs/bench_fast94/fast94_narrow_seed0 runs/bench_fast94/fast94_narrow_seed1
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from torch import Tensor, nn

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.predict import predict
from cifarlab.evaluation.settings import run_settings
from cifarlab.evaluation.tta import mirror, translate_reflect
from cifarlab.runs import Run, load_run

View = tuple[int, int, bool]  # (dy, dx, mirrored)
VIEWS: tuple[View, ...] = tuple((dy, dx, mirrored) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                                for mirrored in (False, True))


def _centre_weighted() -> dict[View, float]:
    shifted = [view for view in VIEWS if view[:2] != (0, 0)]
    return {**{view: 0.25 for view in VIEWS if view[:2] == (0, 0)}, **{view: 0.5 / len(shifted) for view in shifted}}


# The translated pair of `flip_translate` moves the content down-right (1, 1) and up-left (-1, -1).
WEIGHTINGS: dict[str, dict[View, float]] = {
    "none": {(0, 0, False): 1.0},
    "flip": {(0, 0, False): 0.5, (0, 0, True): 0.5},
    "flip_translate": {(0, 0, False): 0.25, (0, 0, True): 0.25, (1, 1, False): 0.125, (1, 1, True): 0.125,
                       (-1, -1, False): 0.125, (-1, -1, True): 0.125},
    "shifts9_uniform": {view: 1.0 / len(VIEWS) for view in VIEWS},
    "shifts9_centre": _centre_weighted(),
}


class ViewOf(nn.Module):
    """The model applied to one view of its (already normalised) input batch."""

    def __init__(self, model: nn.Module, view: View):
        super().__init__()
        self.model = model
        self.view = view

    def forward(self, x: Tensor) -> Tensor:
        dy, dx, mirrored = self.view
        moved = translate_reflect(x, dy, dx) if (dy, dx) != (0, 0) else x
        return self.model(mirror(moved) if mirrored else moved)


def view_probabilities(run: Run) -> tuple[dict[View, Tensor], Tensor]:
    """Softmax outputs on the run's test images for every view, and the test labels."""
    from cifarlab.data.prepare import prepare_splits

    splits = prepare_splits(run.recipe.data, run.recipe.seed)
    model = run.model
    settings = run_settings(model, run.recipe, run.mean, run.std, tta="none")
    probabilities = {view: predict(ViewOf(model, view), splits.test_images, settings) for view in VIEWS}
    return probabilities, splits.test_labels


def top1(probabilities: dict[View, Tensor], labels: Tensor, weights: dict[View, float]) -> float:
    """Top-1 accuracy of the weighted mean of the views' softmax outputs."""
    mixed = sum(weight * probabilities[view] for view, weight in weights.items())
    return (mixed.argmax(dim=1) == labels).float().mean().item()


def score_run(run_dir: Path) -> dict[str, float]:
    """Top-1 under every weighting for one run; checks that its own TTA mode reproduces eval_test.json."""
    run = load_run(run_dir)
    if run.test is None:
        raise CifarlabError(f"{run_dir} has no eval_test.json: score it first with `cifarlab eval {run_dir}`")
    own_mode = run.test.get("tta") or "none"
    if own_mode not in WEIGHTINGS:
        raise CifarlabError(f"{run_dir} was scored with tta {own_mode!r}, which this script does not rebuild; "
                            f"it rebuilds {', '.join(list(WEIGHTINGS)[:3])}")
    probabilities, labels = view_probabilities(run)
    scores = {name: top1(probabilities, labels, weights) for name, weights in WEIGHTINGS.items()}
    if abs(scores[own_mode] - run.test["top1"]) > 1.5 / len(labels):
        raise RuntimeError(f"{run_dir}: tta {own_mode} rebuilt from the views gives {scores[own_mode]:.4f}, "
                           f"its eval_test.json says {run.test['top1']:.4f}")
    return scores


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    """A markdown table: one row per (run, scores) pair and a mean row, one column per weighting."""
    names = list(WEIGHTINGS)
    lines = ["| run | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for run_dir, scores in rows:
        lines.append(f"| {run_dir} | " + " | ".join(f"{scores[name]:.2%}" for name in names) + " |")
    if len(rows) > 1:
        means = {name: statistics.mean(scores[name] for _, scores in rows) for name in names}
        lines.append(f"| mean of {len(rows)} | " + " | ".join(f"{means[name]:.3%}" for name in names) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders with an eval_test.json")
    args = parser.parse_args(argv)
    try:
        rows = []
        for run_dir in args.runs:
            rows.append((str(run_dir), score_run(run_dir)))
            print(f"scored {run_dir}", file=sys.stderr, flush=True)
    except CifarlabError as error:
        print(f"cifarlab: error: {error}", file=sys.stderr)
        return 2
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
