"""CIFAR-100 from scratch on this machine: the fast100 recipes, each run's test top-1 with its training and wall
time, the GFLOP/s it achieved and their share of the bf16 convolution peak measured in the same invocation;
ResNet-18 trained with the FDU recipe for set training times beside them; and the accuracy-against-time plot.

    python bench/fast100.py --seeds 0 1 2                                   # configs/fast100_15min.yaml, 3 seeds
    python bench/fast100.py train.device=cuda --recipe configs/fast100_15min.yaml --seeds 0   # overrides first
    python bench/fast100.py --recipe none --resnet18 900 1800 3600          # ResNet-18 (FDU) for these training times
    python bench/fast100.py --plot-only                                     # redraw the plot, train nothing

Every run appends a row (recipe, seed, top1, tta, train_s, wall_s, gflops, peak_share, settings, device, date)
to bench/results/cifar100_<device>.jsonl, so seeds can be added across sessions; the plot
(bench/results/cifar100_ladder_<device>.png) is drawn from the rows that trained each recipe as its file reads
now (`settings`: the digest of the run's resolved recipe); rows of an earlier version of a recipe stay in the
file as its history. `train_s` sums the epochs' times (training alone); `wall_s` adds loading the data, the
final evaluation and the report.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from collections.abc import Mapping
from pathlib import Path

import torch
from common import append_jsonl
from fast94 import RESULTS, bf16_conv_peak, device_name, run_cifarlab, training_flops_per_image

from cifarlab.config import load_recipe
from cifarlab.config.flatten import settings_digest
from cifarlab.figures import save_figure
from cifarlab.runs import read_metrics

RESNET18 = "configs/fdu/resnet18.yaml"
DOCS_FIGURES = Path("docs/figures")
CIFAR100 = ["data.dataset=cifar100"]
TIMING_STEPS = 30  # steps of the short ResNet-18 run that measures its training speed here
TIMING_LOG_EVERY = 5  # its metrics windows: the median window's pace, after the warm-up window, is the speed
TARGET_TOP1 = 77.0  # fast100's target: past a standard ResNet-18 trained for 200 epochs on CIFAR-100


def results_file(name: str) -> Path:
    """bench/results/<name>_cpu.* or _gpu.*: a GPU's figures never mix with this CPU's."""
    return RESULTS / name.format(device="gpu" if torch.cuda.is_available() else "cpu")


def measured_row(recipe_path: str, seed: int, overrides: list[str], peak: float | None, label: str = "") -> dict:
    """One run, with its achieved GFLOP/s and (on a CPU) their share of the peak measured before the runs."""
    row = run_cifarlab(recipe_path, seed, overrides, label=label, out_dir="runs/bench_fast100")
    work = training_flops_per_image(recipe_path, overrides) * row["steps"] * row["batch_size"] / 1e9
    row["gflops"] = round(work / row["train_s"], 1) if row["train_s"] else None
    row["peak_share"] = round(row["gflops"] / peak, 3) if peak and row["gflops"] else None
    return row


def describe_run(row: dict, peak: float | None) -> str:
    share = f" = {row['peak_share']:.0%} of the bf16 conv peak {peak:.0f}" if row.get("peak_share") else ""
    return (f"{row['label']} seed {row['seed']}: test top-1 {100 * row['top1']:.2f}% (tta {row['tta']}), "
            f"training {row['train_s']:.0f} s, wall {row['wall_s']:.0f} s, {row['gflops']:.0f} GFLOP/s{share}")


def resnet18_epochs(budget_s: float, seed: int, recipe_path: str) -> float:
    """Epochs of the FDU ResNet-18 recipe on CIFAR-100 that fill `budget_s` of training here, from a short timed run."""
    timing = run_cifarlab(recipe_path, seed, [*CIFAR100, f"train.steps={TIMING_STEPS}",
                                              f"train.log_every={TIMING_LOG_EVERY}"], label="timing",
                          out_dir="runs/bench_fast100")
    records = read_metrics(Path(timing["run"]) / "metrics.jsonl")
    windows = [r for r in records if r["kind"] == "step" and r.get("epoch")]
    steps_per_epoch = windows[0]["step"] / windows[0]["epoch"]  # a step record's epoch is fractional
    # The pace of the logged windows after the first, which holds the warm-up steps. Not the epoch's time: that
    # also holds the validation pass, and sized the first 900 s run to 706 s of training.
    images_per_s = statistics.median(r["images_per_s"] for r in windows[1:] or windows)
    seconds_per_step = timing["batch_size"] / images_per_s
    return round(budget_s / seconds_per_step / steps_per_epoch, 2)


def ladder_points(rows: list[dict], shipped: Mapping[str, str]) -> dict[str, list[tuple[float, float, int]]]:
    """Per series (fast100 recipes, ResNet-18): (median training minutes, mean top-1 %, runs) per recipe or budget.

    A fast100 row is on the ladder when it trained the recipe as shipped: its `settings` digest equals
    `shipped[recipe]`, whether the file or overrides gave those values. A row of an earlier version of the file
    (superseded) or with overrides that change it (a pilot, bench/results/fast100_pilots_cpu.md) stays off,
    so that a recipe's point holds the recipe as shipped and nothing else."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if not row.get("budget_s") and row.get("settings") != shipped.get(row["recipe"]):
            continue
        series = "ResNet-18, FDU recipe" if row.get("budget_s") else "fast100 recipes"
        groups.setdefault((series, row.get("budget_s") or row["recipe"]), []).append(row)
    points: dict[str, list[tuple[float, float, int]]] = {}
    for (series, _), runs in sorted(groups.items(), key=lambda item: str(item[0])):
        minutes = statistics.median(r["train_s"] for r in runs) / 60
        points.setdefault(series, []).append((minutes, statistics.mean(100 * r["top1"] for r in runs), len(runs)))
    return {series: sorted(values) for series, values in points.items()}


def shipped_settings(rows: list[dict]) -> dict[str, str]:
    """The settings digest of each fast100 recipe the rows name, as its file reads now."""
    paths = {row["recipe"] for row in rows if not row.get("budget_s")}
    return {path: settings_digest(load_recipe(path)) for path in paths if Path(path).is_file()}


def rows_device(rows: list[dict]) -> str:
    """The machine the rows were measured on, from the rows themselves (a redraw may run with other threads)."""
    return ", ".join(sorted({row["device"] for row in rows if row.get("device")})) or device_name()


def plot_ladder(rows: list[dict], shipped: Mapping[str, str], path: Path) -> Path:
    """Test top-1 against training time: the fast100 recipes and ResNet-18 for the same times."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for series, values in ladder_points(rows, shipped).items():
        ax.plot([minutes for minutes, _, _ in values], [top1 for _, top1, _ in values], "o-", label=series)
        for x, y, n in values:
            ax.annotate(f"{y:.1f}%" + (f" ({n} runs)" if n > 1 else ""), (x, y), textcoords="offset points",
                        xytext=(4, -12), fontsize=8)
    ax.axhline(TARGET_TOP1, color="grey", ls=":", label=f"fast100's target, {TARGET_TOP1}%")
    ax.margins(x=0.1, y=0.12)  # room for the labels right of and under the points
    ax.set(xlabel="training time (minutes)", ylabel="CIFAR-100 test top-1 (%)",
           title=f"CIFAR-100 from scratch, {rows_device(rows)}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", nargs="+", default=["configs/fast100_15min.yaml"], help="recipes to run; `none`: none")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--resnet18", nargs="*", type=float, default=[], metavar="SECONDS",
                    help="also train ResNet-18 with the FDU recipe on CIFAR-100 for these training times")
    ap.add_argument("--resnet18-recipe", default=RESNET18, help=argparse.SUPPRESS)  # a test's tiny stand-in
    ap.add_argument("--plot-only", action="store_true", help="redraw the plot from the results file, train nothing")
    ap.add_argument("overrides", nargs="*", help="recipe overrides for the fast100 recipes, e.g. train.epochs=20")
    args = ap.parse_args()
    log = results_file("cifar100_{device}.jsonl")
    if not args.plot_only:
        run_all(args, log)
    rows = read_rows(log)
    plot = plot_ladder(rows, shipped_settings(rows), results_file("cifar100_ladder_{device}.png"))
    print(f"plot: {plot}")
    if DOCS_FIGURES.is_dir():  # the benchmarks page shows the plot from the docs' own folder
        shutil.copyfile(plot, DOCS_FIGURES / plot.name)


def run_all(args: argparse.Namespace, log: Path) -> None:
    on_gpu = torch.cuda.is_available()
    peak = None if on_gpu else bf16_conv_peak()
    recipes = [] if args.recipe == ["none"] else args.recipe
    planned = [(recipe, seed, args.overrides, None) for recipe in recipes for seed in args.seeds]
    for budget in args.resnet18:
        epochs = resnet18_epochs(budget, args.seeds[0], args.resnet18_recipe)
        print(f"ResNet-18 (FDU recipe) for {budget:.0f} s of training here: {epochs} epochs")
        planned += [(args.resnet18_recipe, seed, [*CIFAR100, f"train.epochs={epochs}"], budget) for seed in args.seeds]
    for recipe, seed, overrides, budget in planned:
        row = measured_row(recipe, seed, overrides, peak, label=f"budget{budget:.0f}s" if budget else "")
        row.update(label=f"{recipe} for {budget:.0f} s" if budget else recipe, **({"budget_s": budget} if budget else {}))
        append_jsonl(log, [{**row, "device": device_name(), "date": time.strftime("%Y-%m-%d")}])
        print(describe_run(row, peak), flush=True)
    if peak is not None:
        print(f"bf16 conv peak measured before the runs {peak:.0f} GFLOP/s, after them {bf16_conv_peak():.0f}")
    print(f"appended to {log}")


if __name__ == "__main__":
    main()
