"""Before a run: a batch that cannot fit is refused with one that does; busy cores give one warning."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest
import torch
from torch import nn

from cifarlab import resources
from cifarlab.config import recipe_from_dict
from cifarlab.errors import CifarlabError


def recipe(batch_size: int, accumulate: int = 1):
    return recipe_from_dict({"train": {"batch_size": batch_size, "accumulate": accumulate, "device": "cpu"}})


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 32 * 32, 10))


def test_batch_larger_than_the_training_set_is_refused_with_one_that_fits():
    with pytest.raises(CifarlabError, match=r"train\.batch_size=100000 is larger than the 500 training images; "
                                            r"use train\.batch_size=256 \(at most 500\)"):
        resources.check_fits(recipe(100_000), 500, small_net(), 32)


def test_activation_bytes_count_every_layer_output_and_leave_the_model_untouched():
    net = small_net().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    per_image = resources.activation_bytes_per_image(net, (3, 32, 32))
    conv, bn, relu, flat, linear = 8 * 32 * 32, 8 * 32 * 32, 8 * 32 * 32, 8 * 32 * 32, 10
    assert per_image == 4 * (conv + bn + relu + flat + linear)
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_batch_beyond_free_memory_is_refused_and_the_suggested_batch_fits():
    net = small_net()
    free = resources.available_bytes(torch.device("cpu"))
    if free is None:
        pytest.skip("this system does not report its free memory")
    per_image = resources.activation_bytes_per_image(net, 32)
    too_many = int(2 * free / (resources.BACKWARD_FACTOR * per_image))  # twice what the machine holds
    with pytest.raises(CifarlabError, match=r"needs about .* GiB on cpu .* use train\.batch_size=(\d+) or less") as info:
        resources.check_fits(recipe(too_many), 10 * too_many, net, 32)
    suggested = int(info.value.args[0].split("use train.batch_size=")[1].split()[0])
    resources.check_fits(recipe(suggested), 10 * too_many, net, 32)  # the suggestion is accepted
    resources.check_fits(recipe(128), 50_000, net, 32)  # an ordinary batch passes


def test_another_training_on_the_machine_gives_one_warning_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    child = textwrap.dedent("""
        import sys, time
        from cifarlab.resources import training_slot
        with training_slot():
            print("running", flush=True)
            time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        assert process.stdout.readline().strip() == "running"
        cores = resources.usable_cores()
        message = resources.warn_if_oversubscribed(threads=cores)
        assert message is not None and f"pid {process.pid}" in message and "run one at a time" in message
        assert capsys.readouterr().err.strip() == message
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    # The killed training's marker is stale: it no longer counts and is removed.
    assert resources.other_trainings() == {}
    assert list(resources._registry().iterdir()) == []
    message = resources.warn_if_oversubscribed(threads=1)
    assert message is None or "other processes already keep" in message  # only other work on the machine may still warn


def test_a_busy_process_is_seen_at_once_not_a_minute_later_as_the_load_average_would(monkeypatch):
    monkeypatch.setattr(resources, "other_trainings", lambda: {})  # a parallel test worker's training is not this test's
    spin = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.3)
        busy = resources.machine_load(window_s=0.5)
        assert busy is not None and busy >= 0.8  # the spinning process alone keeps one core busy
        message = resources.warn_if_oversubscribed(threads=resources.usable_cores())
        assert message is not None and "other processes already keep" in message
    finally:
        spin.kill()
        spin.wait()
