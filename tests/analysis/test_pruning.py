import csv

import pytest
import torch

from cifarlab.analysis.pruning import (
    MaskKeeper,
    apply_masks,
    keep_masks,
    model_and_gammas,
    prunable_weights,
    removed_share,
)
from cifarlab.cli import main
from cifarlab.config import recipe_from_dict
from cifarlab.data.pipeline import Batch
from cifarlab.models import create
from cifarlab.runner.run import run_recipe
from cifarlab.runs import load_run
from cifarlab.training.callbacks import Callback
from cifarlab.training.distributed import Placement
from cifarlab.training.loop import FixedBatches, Trainer
from tests.conftest import tiny_recipe_data


@pytest.fixture(scope="module")
def slbi_run(tmp_path_factory, cifar10):
    """LeNet trained 2 epochs on 200 real images with SLBI, its path tuned to have started (a partial support)."""
    data = tiny_recipe_data(optim={"name": "slbi", "lr": 0.05, "slbi_mu": 1.0, "slbi_lambda": 0.26},
                            train={"epochs": 2}, name="slbi", out_dir=str(tmp_path_factory.mktemp("prune_runs")))
    result = run_recipe(recipe_from_dict(data, source="test"))
    assert result.status == "finished"
    return result.run_dir


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_pruning_to_a_ratio_zeroes_that_share_of_every_layers_filters_and_their_biases(ratio):
    torch.manual_seed(0)
    model = create("lenet", num_classes=10)
    weights = prunable_weights(model)
    assert {name: tuple(w.shape[:1]) for name, w in weights.items()} == {"features.0.weight": (6,),
                                                                         "features.3.weight": (16,)}
    masks = keep_masks(weights, {}, "magnitude", ratio)
    apply_masks(model, masks)
    parameters = dict(model.named_parameters())
    for name, weight in weights.items():
        zero_filters = (weight.flatten(1).abs().sum(dim=1) == 0)
        assert int(zero_filters.sum()) == round(ratio * weight.shape[0])
        assert torch.equal(zero_filters, ~masks[name])
        assert torch.all(parameters[name.replace("weight", "bias")][zero_filters] == 0)
    # magnitude keeps the largest filters: every kept filter was at least as large as every removed one
    torch.manual_seed(0)
    original = prunable_weights(create("lenet", num_classes=10))
    for name, weight in original.items():
        norms = weight.detach().flatten(1).norm(dim=1)
        assert norms[masks[name]].min() >= norms[~masks[name]].max()
    removed = sum(int((w == 0).sum()) for w in weights.values())
    total = sum(w.numel() for w in weights.values())
    assert removed_share(weights, masks) == pytest.approx(removed / total)
    assert removed / total == pytest.approx(ratio, abs=0.06)  # per-layer rounding of 6 and 16 filters


def test_linear_weights_are_pruned_one_by_one_when_named():
    torch.manual_seed(0)
    model = create("lenet", num_classes=10)
    weights = prunable_weights(model, ["all"])
    linear = [name for name, w in weights.items() if w.ndim == 2]
    assert linear
    masks = keep_masks(weights, {}, "magnitude", 0.3)
    for name in linear:
        assert masks[name].shape == weights[name].shape
        assert int((~masks[name]).sum()) == round(0.3 * weights[name].numel())
        assert (weights[name].abs()[~masks[name]].max() <= weights[name].abs()[masks[name]].min())


def test_the_gamma_path_keeps_the_support_of_gamma_even_where_magnitude_would_remove_it():
    weight = torch.stack([torch.full((2, 3, 3), value) for value in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)])
    gamma = torch.zeros_like(weight)
    gamma[0] = 1.0  # the smallest filter entered the path first
    gamma[1] = 0.5
    weights = {"conv.weight": weight}
    by_magnitude = keep_masks(weights, {}, "magnitude", 0.5)["conv.weight"]
    by_gamma = keep_masks(weights, {"conv.weight": gamma}, "slbi", 0.5)["conv.weight"]
    assert by_magnitude.tolist() == [False, False, False, True, True, True]
    # Gamma's support first (filters 0 and 1), then the rest by magnitude: the largest, filter 5.
    assert by_gamma.tolist() == [True, True, False, False, False, True]


@pytest.mark.slow
def test_gamma_of_a_trained_run_is_read_from_last_pt_and_names_the_conv_and_linear_weights(slbi_run):
    model, gammas = model_and_gammas(load_run(slbi_run))
    weights = {name: p for name, p in model.named_parameters() if p.ndim in (2, 4)}
    assert set(gammas) == set(weights)
    assert all(gammas[name].shape == weights[name].shape for name in weights)
    filters_in_support = sum(int((g.flatten(1).norm(dim=1) > 0).sum()) for g in gammas.values() if g.ndim == 4)
    assert 0 < filters_in_support < 6 + 16  # the path has started and not finished


@pytest.mark.slow
def test_prune_command_writes_the_table_and_figure_for_both_methods(slbi_run, tmp_path):
    out = tmp_path / "pruned"
    assert main(["prune", str(slbi_run), "--ratios", "25", "50", "--finetune", "1", "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "prune.csv").open()))
    assert [(r["method"], r["ratio"]) for r in rows] == [("slbi", "25"), ("slbi", "50"),
                                                         ("magnitude", "25"), ("magnitude", "50")]
    for row in rows:
        assert 0 <= float(row["top1"]) <= 100 and 0 <= float(row["top1_finetuned"]) <= 100
    # 6 and 16 filters: 2 + 4 removed at 25 %, 3 + 8 at 50 %, of 6 * 75 and 16 * 150 entries
    assert float(rows[0]["removed"]) == pytest.approx(100 * (2 * 75 + 4 * 150) / (6 * 75 + 16 * 150), abs=0.01)
    assert float(rows[1]["removed"]) == pytest.approx(50.0)
    assert "| slbi | 50 |" in (out / "prune.md").read_text()
    assert (out / "prune.png").stat().st_size > 10_000


@pytest.mark.slow
def test_prune_of_a_run_without_slbi_prunes_by_magnitude_and_bad_layers_are_one_clear_error(tmp_path, capsys,
                                                                                            cifar10):
    data = tiny_recipe_data(name="sgd", out_dir=str(tmp_path / "runs"), eval={"test": False})
    run_dir = run_recipe(recipe_from_dict(data, source="test")).run_dir
    assert main(["prune", str(run_dir), "--ratios", "50", "--out", str(tmp_path / "p")]) == 0
    assert "no Gamma" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "p" / "prune.csv").open()))
    assert [r["method"] for r in rows] == ["magnitude"] and rows[0]["top1_finetuned"] == ""
    assert main(["prune", str(run_dir), "--layers", "features.1.weight"]) == 2
    assert "not a convolution or linear weight" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("")
    assert main(["prune", str(run_dir), "--ratios", "50", "--out", str(tmp_path / "a_file" / "p")]) == 2
    err = capsys.readouterr().err
    assert "a part of the path is a regular file" in err and "pass another --out folder" in err


@pytest.mark.slow
@pytest.mark.parametrize("precision, channels_last", [("bf16", True), ("fp32", False)])
def test_fine_tuning_trains_in_the_runs_precision_and_memory_format(tmp_path, monkeypatch, cifar10, precision,
                                                                    channels_last):
    import cifarlab.analysis.pruning_study as pruning_study
    import cifarlab.training.loop as loop  # the fine-tuning's steps are the Trainer's

    data = tiny_recipe_data(name="ft", out_dir=str(tmp_path / "runs"), eval={"test": False},
                            train={"precision": precision, "channels_last": channels_last})
    run_dir = run_recipe(recipe_from_dict(data, source="test")).run_dir
    seen = []
    real_step = loop.training_step

    def recording_step(opt, inputs, *args):
        result = real_step(opt, inputs, *args)
        conv = opt.model.features[0].weight
        seen.append((result.logits.dtype, inputs.is_contiguous(memory_format=torch.channels_last),
                     conv.is_contiguous(memory_format=torch.channels_last)))
        return result

    monkeypatch.setattr(loop, "training_step", recording_step)
    study = pruning_study.prune_run(run_dir, [50], tmp_path / "p", methods=["magnitude"], finetune_epochs=1,
                                    log=lambda *_: None)
    logits_dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    assert len(seen) == 6  # one epoch: 200 training images in batches of 32, the partial batch dropped
    assert set(seen) == {(logits_dtype, channels_last, channels_last)}
    assert 0 <= study.rows[0].top1_finetuned <= 100


def test_an_interrupted_prune_leaves_no_output_folder(slbi_run, tmp_path, monkeypatch):
    import cifarlab.analysis.pruning_study as pruning_study

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pruning_study, "finetune", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pruning_study.prune_run(slbi_run, [50], tmp_path / "p", methods=["magnitude"], finetune_epochs=1,
                                log=lambda *_: None)
    assert not (tmp_path / "p").exists()


def _fine_tune_pruned_lenet(keep_masks_on: bool) -> tuple[torch.nn.Module, dict, dict]:
    """LeNet with half of its filters and linear weights pruned by magnitude, then trained 4 SGD steps (momentum,
    weight decay) on random images by a Trainer without a run folder; with `keep_masks_on`, a MaskKeeper watches."""
    torch.manual_seed(0)
    model = create("lenet", num_classes=10)
    masks = keep_masks(prunable_weights(model, ["all"]), {}, "magnitude", 0.5)
    apply_masks(model, masks)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    generator = torch.Generator().manual_seed(2)
    batches = []
    for _ in range(4):
        labels = torch.randint(0, 10, (8,), generator=generator)
        batches.append(Batch(torch.randn(8, 3, 32, 32, generator=generator), labels, labels))
    recipe = recipe_from_dict({"optim": {"name": "sgd", "lr": 0.1}, "train": {"epochs": 1, "batch_size": 8,
                                                                              "device": "cpu"}}, source="test")
    keeper = MaskKeeper(masks)
    assert isinstance(keeper, Callback)
    trainer = Trainer(recipe, model, FixedBatches(batches, 10), None, Placement(torch.device("cpu")), run_dir=None,
                      callbacks=[keeper] if keep_masks_on else [])
    assert trainer.fit() == "finished" and trainer.progress.step == 4
    return model, masks, before


def test_the_mask_keeper_is_a_trainer_callback_that_keeps_pruned_weights_and_biases_exactly_zero():
    model, masks, before = _fine_tune_pruned_lenet(keep_masks_on=True)
    parameters = dict(model.named_parameters())
    for name, keep in masks.items():
        weight = parameters[name]
        assert torch.all(weight[~keep] == 0)
        if weight.ndim == 4:  # a pruned filter's bias goes with it
            assert torch.all(parameters[name.replace("weight", "bias")][~keep] == 0)
        assert not torch.equal(weight[keep], before[name][keep])  # the kept weights did train
    # Without the callback the same training moves pruned linear weights (a zeroed ReLU filter gets no gradient,
    # a zeroed linear weight does): the keeper is what holds them at zero.
    unkept = dict(_fine_tune_pruned_lenet(keep_masks_on=False)[0].named_parameters())
    assert any(bool(unkept[name][~keep].abs().sum() > 0) for name, keep in masks.items() if keep.ndim == 2)
