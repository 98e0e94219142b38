import json
import shutil
import subprocess
import sys

import pytest

from cifarlab.training import allocator

# Trains a small convolutional network on one batch (activations of 32 MiB per layer) and counts
# the minor page faults of 5 steps after 3 warm-up steps: each first touch of a freshly mapped
# 4 KiB page is one.
_FAULTS = """
import json, resource, sys, torch
from torch import nn
from cifarlab.training.allocator import apply_allocator_setting
applied = apply_allocator_setting(sys.argv[1])
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1),
                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
images, labels = torch.randn(256, 3, 32, 32), torch.randint(0, 10, (256,))
def step():
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(images), labels).backward()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(json.dumps({"applied": applied, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


# Frees 640 MiB of tensors, all alive at once as a step's activations are, with a small live one above
# them in the heap (glibc's defaults would have unmapped each), then releases the free heap; resident
# MiB from /proc/self/statm.
_RELEASE = """
import json, sys, torch
from cifarlab.training.allocator import apply_allocator_setting, release_freed_memory
def resident_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
apply_allocator_setting(sys.argv[1])
start = resident_mib()
activations = [torch.ones(8 * 2**20) for _ in range(20)]
live = torch.zeros(10)
del activations
held = resident_mib()
released = release_freed_memory()
print(json.dumps({"grown": held - start, "released": released, "after": resident_mib() - start}))
"""


def _python(script: str, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, check=True,
                         env={"OMP_NUM_THREADS": "1", "PATH": ""})
    return json.loads(out.stdout)


@pytest.mark.slow
@pytest.mark.skipif(not allocator.glibc_available(), reason="tunes glibc's malloc only")
def test_auto_keeps_freed_tensors_in_the_process_instead_of_faulting_them_back_in():
    retained = _python(_FAULTS, "auto")
    system = _python(_FAULTS, "system")
    assert retained["applied"] and not system["applied"]
    # glibc's defaults map every activation anew (about 740,000 faults here); the retained heap
    # reuses the pages of the step before.
    assert system["faults"] > 100_000
    # (the heap may still grow once by a few activations while it settles: 0-41,000 faults seen)
    assert retained["faults"] < system["faults"] / 10


@pytest.mark.slow
@pytest.mark.skipif(not allocator.glibc_available(), reason="tunes glibc's malloc only")
def test_the_memory_kept_for_speed_is_given_back_when_asked():
    retained = _python(_RELEASE, "auto")
    system = _python(_RELEASE, "system")
    assert retained["grown"] > 500  # the 640 MiB stayed in the process
    assert retained["released"] and retained["after"] < 100
    assert not system["released"] and system["grown"] < 100  # glibc's defaults never held it


def _record_allocator_calls(monkeypatch) -> list[str]:
    """The settings applied and the releases, in order, instead of changing this process's malloc."""
    calls: list[str] = []
    monkeypatch.setattr(allocator, "apply_allocator_setting", lambda mode: calls.append(mode) or False)
    monkeypatch.setattr(allocator, "release_freed_memory", lambda: calls.append("released") or False)
    return calls


def test_a_run_releases_the_memory_when_it_ends(tiny_recipe, monkeypatch):
    from cifarlab.runner.run import run_recipe

    calls = _record_allocator_calls(monkeypatch)
    run_recipe(tiny_recipe(train={"epochs": 1}), stop_after=1)
    assert calls == ["auto", "released"]


@pytest.mark.slow
def test_evaluation_commands_use_the_runs_setting_and_give_the_memory_back(tiny_recipe, tmp_path, monkeypatch):
    import cifarlab
    from cifarlab.cli import main
    from cifarlab.runner.run import run_recipe

    run_dir = run_recipe(tiny_recipe(train={"epochs": 1, "allocator": "system"})).run_dir
    elsewhere = tmp_path / "model.pt"
    shutil.copy(run_dir / "best.pt", elsewhere)
    commands = {
        "eval": ["eval", str(run_dir), "--split", "val"],
        "eval of a checkpoint file": ["eval", str(elsewhere)],  # its own recipe travels in the file
        "predict": ["predict", str(run_dir), "--data", "cifar10", "--out", str(tmp_path / "labels.csv"),
                    "--limit", "50"],
        "robustness eval": ["robustness", "eval", str(run_dir), "--corruptions", "contrast", "--severities", "2",
                            "--limit", "50"],
        "landscape": ["landscape", str(run_dir), "--dims", "1", "--points", "2", "--images", "50"],
        "landscape --between": ["landscape", "--between", str(run_dir), str(run_dir), "--points", "2",
                                "--margin", "0", "--images", "50"],
        "prune": ["prune", str(run_dir), "--ratios", "50", "--methods", "magnitude"],
    }
    for name, command in commands.items():
        calls = _record_allocator_calls(monkeypatch)
        assert main(command) == 0, name
        assert calls == ["system", "released"], name
    calls = _record_allocator_calls(monkeypatch)
    cifarlab.evaluate(run_dir, split="val")
    assert calls == ["system", "released"]


def test_without_glibc_nothing_is_changed(monkeypatch):
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    monkeypatch.setattr(allocator, "_applied", False)
    assert allocator.retain_freed_memory() is False
    assert allocator.apply_allocator_setting("auto") is False
    assert allocator.release_freed_memory() is False


def test_an_unknown_setting_is_a_bug_not_a_silent_default():
    with pytest.raises(ValueError, match="auto or system"):
        allocator.apply_allocator_setting("jemalloc")


def test_a_resumed_run_may_change_the_allocator(tiny_recipe):
    from cifarlab.runner.run import run_recipe
    from cifarlab.runs.folder import load_run_recipe

    stopped = run_recipe(tiny_recipe(train={"epochs": 1, "allocator": "system"}), stop_after=2)
    recipe_file = stopped.run_dir / "recipe.yaml"
    assert "allocator: system" in recipe_file.read_text()
    recipe_file.write_text(recipe_file.read_text().replace("allocator: system", "allocator: auto"))
    resumed = run_recipe(load_run_recipe(stopped.run_dir), resume=stopped.run_dir)
    assert resumed.status == "finished"
