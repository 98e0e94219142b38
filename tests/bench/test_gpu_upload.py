"""bench/gpu_upload.py: CIFAR-10 cut into parts that fit one device command each, put back together exactly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cifarlab.data import load_dataset
from cifarlab.data.sources import data_root, dataset_origin
from tests.bench import BENCH_DIR, load_bench_script


def _archive(folder, size: int = 3_000_000):
    folder.mkdir()
    payload = bytes((i * 7919) % 251 for i in range(size))
    (folder / "cifar10.zip").write_bytes(payload)
    (folder / "cifar10.json").write_text(json.dumps({"file": "cifar10.zip", "bytes": size}))
    return payload


def test_parts_fit_the_limit_and_join_back_to_the_same_bytes(tmp_path):
    upload = load_bench_script("gpu_upload")
    payload = _archive(tmp_path / "data")
    parts = upload.split(tmp_path / "data", tmp_path / "up", part_mib=1)
    assert len(parts) == 3 and all(part.stat().st_size <= 1 << 20 for part in parts)
    joined = upload.join(tmp_path / "up", tmp_path / "out")
    assert joined.read_bytes() == payload
    assert json.loads((tmp_path / "out" / "cifar10.json").read_text())["bytes"] == len(payload)
    commands = upload.device_commands(parts, tmp_path / "up")
    assert len(commands) == 3 and "join" in commands[-1] and all("manifest.json" in c for c in commands)
    # The commands name the folder the parts were written to, not the default one.
    assert f"join {tmp_path / 'up'} --out" in commands[-1] and all("gpu_upload " not in c for c in commands)


def test_a_missing_or_damaged_part_is_refused_naming_it_and_nothing_is_written(tmp_path):
    upload = load_bench_script("gpu_upload")
    _archive(tmp_path / "data")
    parts = upload.split(tmp_path / "data", tmp_path / "up", part_mib=1)
    damaged = bytearray(parts[1].read_bytes())
    damaged[10] ^= 1
    parts[1].write_bytes(bytes(damaged))
    script = [sys.executable, str(BENCH_DIR / "gpu_upload.py"), "join", str(tmp_path / "up"), "--out", str(tmp_path / "out")]
    result = subprocess.run(script, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"gpu_upload: error: {parts[1]} is damaged (size or sha256 differs from the manifest); carry it again"
    parts[1].unlink()
    result = subprocess.run(script, capture_output=True, text=True)
    assert result.returncode == 2 and "has not arrived" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_the_real_dataset_travels_in_two_parts_and_cifarlab_decodes_the_joined_copy(tmp_path, monkeypatch):
    upload = load_bench_script("gpu_upload")
    shared = data_root(None)
    parts = upload.split(shared, tmp_path / "up")
    # Two parts, each with the checkout (about 4 MiB) under one command's 64 MiB.
    assert len(parts) == 2 and all(part.stat().st_size <= upload.DEFAULT_PART_MIB << 20 for part in parts)
    joined = upload.join(tmp_path / "up", tmp_path / "gpu_data")
    assert upload.sha256(joined) == json.loads((shared / "cifar10.json").read_text())["sha256"]
    # As on the bare machine: no decoded cache anywhere, so cifarlab decodes the joined zip (checking its pixels).
    monkeypatch.setenv("CIFARLAB_DATA", str(tmp_path / "gpu_data"))
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "cache"))
    dataset = load_dataset("cifar10")
    assert dataset.train_images.shape == (50000, 3, 32, 32) and len(dataset.test_labels) == 10000
    assert dataset_origin("cifar10")["source"] == str(joined)
