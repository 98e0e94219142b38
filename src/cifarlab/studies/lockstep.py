"""Lockstep comparisons: variants of one recipe trained from one initialisation on identical batches.

A study file holds

    recipe: ../resnet18.yaml              # relative to the study file, or a shipped recipe name
    overrides: {train.epochs: 50}         # optional: fixed for every variant
    vary: {model.options.activation: [relu, gelu]}            # one variant per value, or
    variants: {sgd: {optim.name: sgd}, adam: {optim.name: adam, optim.lr: 0.001}}
    seeds: [0, 1, 2]                      # optional, default [0]
    out: studies/activation               # optional: the study folder

Fair by construction: per seed, the model is built once with that seed's RNG and its weights are
copied into every variant with the same parameter names and shapes (an activation or a loss changes
no parameter); every variant keeps `seed`, so the batch pipeline, a pure function of (seed, epoch,
batch), hands each the same images in the same order with the same augmentation draws. Each run
records the sha256 of the weights its first step starts from and of every step's inputs, targets and
labels, and compare.json puts them side by side with the recipe keys each variant changed, so
anyone can check the fairness afterwards.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import torch

from cifarlab.atomic import write_text
from cifarlab.config import load_recipe
from cifarlab.config.flatten import differing_keys, recipe_values
from cifarlab.config.recipe import Recipe
from cifarlab.config.safe_yaml import read_yaml_file
from cifarlab.config.shipped import shipped_file
from cifarlab.data.sources import Dataset, load_dataset
from cifarlab.errors import CifarlabError
from cifarlab.runner.run import build_model, run_recipe
from cifarlab.runs import RECIPE, load_run
from cifarlab.studies.lockstep_plots import plot_lockstep_curves
from cifarlab.studies.lockstep_table import (
    RUN_COLUMNS,
    run_scores,
    summarise,
    summary_markdown,
)
from cifarlab.sweeps.grid import as_override_text
from cifarlab.tables import csv_text
from cifarlab.training.callbacks import Callback, StepOutput
from cifarlab.training.loop import changed_keys, training_values

COMPARE_JSON = "compare.json"
RUN_RECORD = "lockstep.json"  # in each run folder, once it finished: its hashes and wall time
RUNS = "runs"
_STUDY_KEYS = ("recipe", "overrides", "vary", "variants", "seeds", "out")
# Recipe keys that name or place a run: they differ between variants by design.
_PLACEMENT = ("name", "out_dir")


@dataclass
class Study:
    """A lockstep study: a recipe, fixed overrides, the variants (name -> overrides) and the seeds."""

    recipe: str
    variants: dict[str, list[str]]
    overrides: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    out: Path | None = None

    @property
    def studied_keys(self) -> list[str]:
        """The recipe keys some variant sets, in the order they first appear."""
        keys: list[str] = []
        for words in self.variants.values():
            keys += [w.partition("=")[0] for w in words if w.partition("=")[0] not in keys]
        return keys


def _overrides(mapping: Any, where: str) -> list[str]:
    if not isinstance(mapping, dict):
        raise CifarlabError(f"{where} must be a mapping of recipe keys to values, e.g. {{optim.name: adam}}")
    return [f"{key}={as_override_text(value)}" for key, value in mapping.items()]


def _variant_name(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", as_override_text(value)).strip("-") or "value"


def study_path(name_or_path: str | Path) -> Path:
    """An existing study file, else the shipped one of that name (`fdu/studies/activation_cpu`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    return shipped_file(name_or_path) or path


def read_study(path: str | Path) -> Study:
    """The Study a study file (or shipped study name) describes; its recipe path is relative to the file."""
    path = study_path(path)
    if not path.is_file():
        raise CifarlabError(f"study file {path} does not exist; give a YAML file with recipe: and variants: (or vary:)")
    content = read_yaml_file(path, "study file")
    if not isinstance(content, dict) or "recipe" not in content or ("vary" in content) == ("variants" in content):
        raise CifarlabError(f"study file {path} needs `recipe:` and exactly one of `variants:` (name: {{key: value}}) "
                            "or `vary:` ({key: [values]}); see `cifarlab compare --help`")
    unknown = sorted(set(content) - set(_STUDY_KEYS))
    if unknown:
        raise CifarlabError(f"study file {path} has unknown keys {', '.join(unknown)}; it knows {', '.join(_STUDY_KEYS)}")
    if "vary" in content:
        vary = content["vary"]
        entries = list(vary.items()) if isinstance(vary, dict) else []
        if len(entries) != 1 or not isinstance(entries[0][1], list) or not entries[0][1]:
            raise CifarlabError(f"`vary:` in {path} takes one key and a list of values, "
                                "e.g. vary: {train.loss: [mse, bce]}; "
                                "use `variants:` to change several keys per variant")
        key, values = entries[0]
        variants = {_variant_name(v): [f"{key}={as_override_text(v)}"] for v in values}
        if len(variants) != len(values):
            raise CifarlabError(f"`vary:` in {path} lists a value twice; give each variant once")
    else:
        if not isinstance(content["variants"], dict) or not content["variants"]:
            raise CifarlabError(f"`variants:` in {path} must map variant names to overrides, "
                                "e.g. adam: {optim.name: adam}")
        variants = {str(name): _overrides(words or {}, f"variant {name!r} in {path}")
                    for name, words in content["variants"].items()}
    fixed = sorted({w.partition("=")[0] for words in variants.values() for w in words} & {"seed", *_PLACEMENT})
    if fixed:
        raise CifarlabError(f"variants in {path} set {', '.join(fixed)}, which the study itself sets for every variant "
                            "(the same seed keeps the batches identical); list seeds under `seeds:` instead")
    seeds = content.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise CifarlabError(f"`seeds:` in {path} must be a list of distinct integers, e.g. [0, 1, 2]")
    recipe = str(content["recipe"])
    local = path.parent / recipe
    return Study(recipe=str(local) if local.is_file() else recipe, variants=variants,
                 overrides=_overrides(content.get("overrides") or {}, f"`overrides:` in {path}"),
                 seeds=seeds, out=Path(content["out"]) if content.get("out") else None)


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    """The tensor's values as bytes in row-major order, whatever its device, dtype or memory format."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state_dict's names, shapes and values, in its key order."""
    digest = hashlib.sha256()
    for key, tensor in state.items():
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor_bytes(tensor))
    return digest.hexdigest()


class Fingerprint(Callback):
    """Hashes the weights the first step starts from and every step's inputs, targets and labels.

    Copying each batch to the host costs a synchronisation per step: the price of a checkable study.
    """

    def __init__(self):
        self.initial_weights: str | None = None
        self.batches = hashlib.sha256()
        self.steps = 0

    def on_start(self, trainer, total_steps: int, start_step: int) -> None:
        if start_step != 0:
            raise CifarlabError("a lockstep run cannot resume part-way (its batch hash would miss the first steps); "
                                "delete the run folder and run the study again")
        self.initial_weights = weights_sha256(trainer.model.state_dict())

    def on_step(self, trainer, step: StepOutput) -> None:
        for tensor in (step.inputs, step.targets, step.labels):
            self.batches.update(f"{tuple(tensor.shape)}:{tensor.dtype};".encode())
            self.batches.update(tensor_bytes(tensor))
        self.steps += 1


def same_layout(state: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> bool:
    """Whether two state_dicts have the same keys with the same shapes (one can be loaded into the other)."""
    return list(state) == list(other) and all(state[k].shape == other[k].shape for k in state)


def recipe_differences(recipe: Recipe, other: Recipe) -> list[str]:
    """The dotted recipe keys whose values differ between two recipes (not the run's name or folder)."""
    return differing_keys(recipe_values(recipe), recipe_values(other), ignore=_PLACEMENT)


@dataclass
class VariantRun:
    """One finished run of a study, with the hashes that make its fairness checkable."""

    variant: str
    seed: int
    run_dir: Path
    overrides: list[str]
    initial_weights: str  # sha256 of the weights the first step started from
    shared_initialisation: bool  # weights copied from the seed's shared model (False: another architecture)
    batches: str  # sha256 of every step's inputs, targets and labels, in order
    steps: int
    wall_s: float
    differs_in: list[str]  # recipe keys whose values differ from the study's first variant


def variant_recipes(study: Study, overrides: Sequence[str] = ()) -> dict[tuple[str, int], Recipe]:
    """Every (variant, seed)'s resolved recipe, loaded and checked before any run starts."""
    recipes = {}
    for seed in study.seeds:
        for variant, words in study.variants.items():
            recipe = load_recipe(study.recipe, [*study.overrides, *overrides, *words, f"seed={seed}"])
            recipes[(variant, seed)] = replace(recipe, name=f"{variant}_seed{seed}")
    return recipes


def _initial_model(recipe: Recipe, num_classes: int, references: list[dict]) -> tuple[torch.nn.Module, bool]:
    """The variant's model with the weights of the first earlier variant of the same layout (if any)."""
    torch.manual_seed(recipe.seed)
    model = build_model(recipe, num_classes)
    state = model.state_dict()
    for reference in references:
        if same_layout(state, reference):
            model.load_state_dict(reference)
            return model, True
    references.append(copy.deepcopy(state))
    return model, len(references) == 1


def run_study(study: Study, out: str | Path, overrides: Sequence[str] = (),
              progress_stream: TextIO | None = None) -> list[VariantRun]:
    """Train every variant at every seed into out/runs/<variant>_seed<seed> and return the runs, in order.

    A finished run is kept (its record read back); an unfinished one starts again from scratch,
    because its batch hash must cover every step.
    """
    out = Path(out)
    recipes = variant_recipes(study, list(overrides))
    first = next(iter(study.variants))
    datasets: dict[tuple, Dataset] = {}
    done = []
    for seed in study.seeds:
        references: list[dict] = []
        for variant, words in study.variants.items():
            recipe = recipes[(variant, seed)]
            key = (recipe.data.dataset, recipe.data.root)
            if key not in datasets:
                datasets[key] = load_dataset(recipe.data.dataset, root=recipe.data.root)
            dataset = datasets[key]
            model, shared = _initial_model(recipe, len(dataset.classes), references)
            run_dir = out / RUNS / recipe.name
            record = _finished_record(run_dir, recipe)
            if record is None:
                record = _train(recipe, run_dir, model, dataset, progress_stream)
            done.append(VariantRun(
                variant=variant, seed=seed, run_dir=run_dir, overrides=list(words), shared_initialisation=shared,
                differs_in=recipe_differences(recipes[(first, seed)], recipe), **record))
    return done


def _finished_record(run_dir: Path, recipe: Recipe) -> dict | None:
    """The hashes of a run the study finished before, if it trained exactly this recipe."""
    path = run_dir / RUN_RECORD
    if not path.is_file():
        return None
    saved = load_recipe(run_dir / RECIPE, check_machine=False)
    changed = changed_keys(training_values(saved), recipe)
    if changed:
        raise CifarlabError(f"{run_dir} was trained with other values of {', '.join(changed)} "
                            "than the study now asks for; "
                            "give the changed study another --out folder, or delete that folder to train it again")
    return json.loads(path.read_text())


def _train(recipe: Recipe, run_dir: Path, model: torch.nn.Module, dataset: Dataset,
           progress_stream: TextIO | None) -> dict:
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an unfinished run: its hashes would not cover every step
    fingerprint = Fingerprint()
    started = time.perf_counter()
    result = run_recipe(replace(recipe, out_dir=str(run_dir.parent)), model=model, dataset=dataset,
                        callbacks=[fingerprint], progress_stream=progress_stream)
    if result.status != "finished":
        raise CifarlabError(f"the study stopped during {run_dir.name}; run the same command again "
                            "(finished variants are kept, this one starts again)")
    record = dict(initial_weights=fingerprint.initial_weights, batches=fingerprint.batches.hexdigest(),
                  steps=fingerprint.steps, wall_s=round(time.perf_counter() - started, 2))
    write_text(run_dir / RUN_RECORD, json.dumps(record, indent=2))
    return record


def fairness(study: Study, runs: list[VariantRun]) -> list[dict]:
    """Per seed: whether every variant started from the same weights, saw the same batches, and changed
    only the studied keys."""
    checks = []
    for seed in study.seeds:
        members = [r for r in runs if r.seed == seed]
        shared = [r for r in members if r.shared_initialisation]
        checks.append(dict(
            seed=seed,
            same_initial_weights=len({r.initial_weights for r in shared}) == 1 and len(shared) == len(members),
            same_batches=len({r.batches for r in members}) == 1,
            only_studied_keys_differ=all(set(r.differs_in) <= set(study.studied_keys) for r in members),
        ))
    return checks


def compare_record(study: Study, runs: list[VariantRun], scores: list[dict], out: Path) -> dict:
    """The content of compare.json: the study, each run's hashes and scores, and the fairness checks."""
    return dict(
        recipe=study.recipe, overrides=study.overrides, studied_keys=study.studied_keys, seeds=study.seeds,
        variants=study.variants, fairness=fairness(study, runs),
        runs=[dict(variant=r.variant, seed=r.seed, run=str(r.run_dir.relative_to(out)), overrides=r.overrides,
                   initial_weights_sha256=r.initial_weights, shared_initialisation=r.shared_initialisation,
                   batches_sha256=r.batches, steps=r.steps, differs_in=r.differs_in, wall_s=r.wall_s, **score)
              for r, score in zip(runs, scores)],
    )


@dataclass
class StudyResult:
    """Where a study's outputs are, and its runs."""

    out: Path
    runs: list[VariantRun]
    summary_markdown: str


def compare(study: Study, out: str | Path, overrides: Sequence[str] = (),
            progress_stream: TextIO | None = None) -> StudyResult:
    """Run the study and write compare.json, results.csv, summary.csv, summary.md and curves.png into `out`."""
    out = Path(out)
    runs = run_study(study, out, overrides, progress_stream)
    scores = [run_scores(r.run_dir) for r in runs]
    write_text(out / COMPARE_JSON, json.dumps(compare_record(study, runs, scores, out), indent=2))
    rows = [dict(variant=r.variant, seed=r.seed, wall_s=r.wall_s, run=str(r.run_dir.relative_to(out)), **score)
            for r, score in zip(runs, scores)]
    write_text(out / "results.csv", csv_text(rows, RUN_COLUMNS))
    summary = summarise(rows)
    write_text(out / "summary.csv", csv_text(summary, list(summary[0])))
    studied = ", ".join(study.studied_keys) or "variant"
    table = summary_markdown(summary, studied)
    write_text(out / "summary.md", table)
    curves: dict[str, list[list[dict]]] = {}
    for r in runs:
        curves.setdefault(r.variant, []).append(load_run(r.run_dir).history)
    seeds = f"seed{'s' if len(study.seeds) > 1 else ''} {', '.join(map(str, study.seeds))}"
    plot_lockstep_curves(curves, out / "curves.png", title=f"{studied} ({seeds})")
    return StudyResult(out=out, runs=runs, summary_markdown=table)
