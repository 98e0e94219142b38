"""The Python API a notebook uses: cifarlab.training / load_run / evaluate / create_model / load_dataset."""

import subprocess
import sys

import pytest
import torch
from torch import nn

import cifarlab
from tests.conftest import assert_equalised, clahe_scores_by_hand, tiny_recipe_data

TINY = tiny_recipe_data(name="api", train={"batch_size": 50}, log={"sinks": ["jsonl"]})


def test_import_cifarlab_is_cheap_and_lists_the_api():
    code = "import sys, cifarlab; print('torch' in sys.modules, sorted(set(dir(cifarlab)) & {'train', 'evaluate', 'load_run'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "False"  # torch loads on the first call, not on import
    assert "'train'" in out and "'evaluate'" in out and "'load_run'" in out


@pytest.mark.slow
def test_train_a_mapping_returns_a_run_whose_reloaded_model_scores_the_same(tmp_path, cifar10):
    run = cifarlab.train(TINY, out_dir=tmp_path, overrides={"optim.lr": 0.02})
    assert run.dir.parent == tmp_path and run.recipe.optim.lr == 0.02
    assert [record["epoch"] for record in run.history] == [1]
    assert 0.0 <= run.test["top1"] <= 1.0 and {"top5", "loss", "ece"} <= set(run.test)
    assert isinstance(run.model, nn.Module) and not run.model.training
    reloaded = cifarlab.load_run(run.dir)
    assert cifarlab.evaluate(reloaded)["top1"] == run.test["top1"]
    assert cifarlab.evaluate(str(run.dir))["top1"] == run.test["top1"]
    val = cifarlab.evaluate(reloaded, split="val")
    assert val["num_images"] == 100


@pytest.mark.slow
def test_train_a_module_of_ones_own_on_tensors(tmp_path, cifar10_small):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    before = [p.detach().clone() for p in net.parameters()]
    data = (cifar10_small.train_images, cifar10_small.train_labels, cifar10_small.test_images, cifar10_small.test_labels)
    run = cifarlab.train(TINY, model=net, data=data, out_dir=tmp_path)
    assert run.model is net
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))  # it trained
    assert run.test["num_images"] == len(cifar10_small.test_labels)
    assert run.recipe.model.name.endswith("Sequential")
    scored = cifarlab.evaluate(net, data="cifar10")
    assert 0.0 <= scored["top1"] <= 1.0


def test_two_tensors_train_without_a_test_set(tmp_path, cifar10_small):
    run = cifarlab.train(TINY, data=(cifar10_small.train_images, cifar10_small.train_labels), out_dir=tmp_path)
    assert run.test is None and run.history


def test_bad_tensors_and_overrides_are_one_clear_error(tmp_path, cifar10_small):
    with pytest.raises(cifarlab.CifarlabError, match="uint8"):
        cifarlab.train(TINY, data=(cifar10_small.train_images.float(), cifar10_small.train_labels), out_dir=tmp_path)
    with pytest.raises(cifarlab.CifarlabError, match="optim.lrr"):
        cifarlab.train("quick", overrides={"optim.lrr": 0.1}, out_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_tensors_that_would_fail_later_or_train_wrongly_are_refused_up_front(tmp_path, cifar10_small):
    images, labels = cifar10_small.train_images, cifar10_small.train_labels
    bad = {
        "1000 training images but 10 labels": (images, labels[:10]),
        "no training images": (images[:0], labels[:0]),
        "integer class indices; got torch.float32": (images, labels.float() + 0.5),  # not truncated silently
        r"integer class indices; got torch.int64 \(1000, 10\).*labels.argmax\(1\)":
            (images, torch.nn.functional.one_hot(labels, 10)),
        "class indices 0, 1, ...; found -1": (images, labels - 1),
        "test images are": (images, labels, images[:10, :, :16], labels[:10]),
        "10 test images but 9 labels": (images, labels, images[:10], labels[:9]),
    }
    for message, data in bad.items():
        with pytest.raises(cifarlab.CifarlabError, match=message):
            cifarlab.train(TINY, data=data, out_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_create_model_and_load_dataset_are_the_registry_and_the_data_layer(cifar10):
    model = cifarlab.create_model("lenet", num_classes=10)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert cifarlab.load_dataset("cifar10").classes == cifar10.classes


def test_registering_a_model_again_from_the_same_code_is_harmless():
    source = (
        "import cifarlab\n"
        "from torch import nn\n"
        "@cifarlab.register_model\n"
        "def notebook_net(num_classes=10):\n"
        "    return nn.Linear(4, num_classes)\n"
    )
    namespace: dict = {"__name__": "notebook_cell"}
    exec(compile(source, "<cell>", "exec"), namespace)
    exec(compile(source, "<cell>", "exec"), namespace)  # the cell run twice
    assert cifarlab.create_model("notebook_net", num_classes=3).out_features == 3


def test_arguments_of_the_wrong_type_are_a_type_error_naming_what_is_taken():
    with pytest.raises(TypeError, match="recipe must be a shipped name, a YAML path, a mapping or a Recipe; got int"):
        cifarlab.train(12345)
    with pytest.raises(TypeError, match="takes a Run, a run folder or an nn.Module; got int"):
        cifarlab.evaluate(42)
    with pytest.raises(TypeError, match=r"overrides must map dotted keys to values, e.g. .*; got list"):
        cifarlab.train("quick", overrides=["train.epochs=1"])
    with pytest.raises(TypeError, match="model must be a torch nn.Module to train; got str"):
        cifarlab.train("quick", model="resnet18")


@pytest.mark.slow
def test_evaluate_takes_a_batch_size_for_a_run_too(tmp_path, cifar10):
    run = cifarlab.train(TINY, out_dir=tmp_path)
    # LeNet in fp32 in eval mode: the split into forward passes cannot change a score.
    assert cifarlab.evaluate(run, batch_size=7)["top1"] == run.test["top1"]
    with pytest.raises(cifarlab.CifarlabError, match="batch_size=0 must be at least 1"):
        cifarlab.evaluate(run, batch_size=0)
    with pytest.raises(cifarlab.CifarlabError, match="batch_size=0 must be at least 1"):
        cifarlab.evaluate(run.model, batch_size=0)


def test_images_the_model_cannot_take_say_what_would_fix_them(tmp_path, cifar10_small):
    images, labels = cifar10_small.train_images, cifar10_small.train_labels
    # Grey images: a channel mismatch, which no resizing fixes.
    with pytest.raises(cifarlab.CifarlabError, match=r"cannot take 1-channel 32x32 images .*grey image repeated to 3"):
        cifarlab.train(TINY, data=(images[:, :1], labels), out_dir=tmp_path)
    # 8x8 images: too small for LeNet's two 5x5 convs and pools, which a resize does fix.
    with pytest.raises(cifarlab.CifarlabError, match=r"cannot take 3-channel 8x8 images .*raise augment.resize"):
        cifarlab.train(TINY, data=(images[..., :8, :8], labels), out_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_an_airbench_recipe_with_a_model_of_ones_own_names_the_init_setting(tmp_path, cifar10_small):
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    data = (cifar10_small.train_images, cifar10_small.train_labels)
    with pytest.raises(cifarlab.CifarlabError, match="set model.init=default"):
        cifarlab.train(TINY, model=net, data=data, out_dir=tmp_path, overrides={"model.init": "airbench"})
    run = cifarlab.train(TINY, model=net, data=data, out_dir=tmp_path, overrides={"model.init": "default"})
    assert run.history


@pytest.mark.slow
def test_evaluate_scores_a_run_trained_with_clahe_on_equalised_images(clahe_run):
    run = cifarlab.load_run(clahe_run)
    assert_equalised(cifarlab.evaluate(run), *clahe_scores_by_hand(run, "test"))
    assert_equalised(cifarlab.evaluate(run, split="val", tta="flip"), *clahe_scores_by_hand(run, "val", tta="flip"))
