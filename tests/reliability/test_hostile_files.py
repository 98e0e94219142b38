"""Hostile files: a recipe or an image folder from someone else ends in one `cifarlab: error:` line, or runs.

The four classic attacks run the real command in a subprocess whose address space is capped at what
a normal `cifarlab data info` needed (measured here, first) plus 1 GiB: an alias bomb (~400 bytes
naming 387 million strings), 20,000 nested brackets, a string over 1 MB, and a decompression-bomb
PNG (~32 kB that decode to 256 million pixels). Each must end with exit code 2 and one error line,
within 5 s and 1 GiB of what the baseline run took. The fuzz part draws hostile YAML (anchors and
aliases, nesting, huge strings, odd keys, tags, duplicate keys, encodings) and hostile image folders
(bombs, links out of the tree, to folders and in loops, pipes, empty and enormous files) and runs
`cifarlab train FILE --print-config` or `cifarlab data info folder:PATH` on each, in-process.
"""

from __future__ import annotations

import codecs
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cifarlab.config.recipe import DataConfig
from cifarlab.data.prepare import prepare_splits
from cifarlab.errors import CifarlabError

from .hostile_files import (
    alias_bomb,
    bomb_png,
    cli,
    flow_alias_chain,
    good_tree,
    outcome_problem,
    png,
    png_header,
    zip_tree,
)
from .outcome import EXAMPLES

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmPeak from /proc (Linux)")
GIB = 2**30
# The baseline prints its peak address space: what torch's import alone maps is most of it (~3 GiB).
_REPORT_PEAK = ("import runpy, sys\ntry:\n    runpy.run_module('cifarlab', run_name='__main__', alter_sys=True)\n"
                "finally:\n    status = open('/proc/self/status').read()\n"
                "    print('VmPeak', status.split('VmPeak:')[1].split()[0], file=sys.stderr)\n")


@dataclass(frozen=True)
class Ran:
    code: int
    stderr: str
    seconds: float
    max_rss: int  # bytes, of this child alone (wait4)


def run_python(args: list[str], cwd: Path, address_space: int | None = None, timeout: float = 120) -> Ran:
    """`python ARGS` in a subprocess, its address space capped at `address_space` bytes."""
    def cap() -> None:
        if address_space:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    env = dict(os.environ, OMP_NUM_THREADS="1", CIFARLAB_CACHE=str(cwd / "cache"))
    with tempfile.TemporaryFile() as err:
        start = time.monotonic()
        process = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=err, preexec_fn=cap)
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        process.returncode = code = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - start
        err.seek(0)
        return Ran(code, err.read().decode(errors="replace"), seconds, usage.ru_maxrss * 1024)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> tuple[Ran, int]:
    """A normal `cifarlab data info` on a small folder: its run, and its peak address space in bytes."""
    folder = tmp_path_factory.mktemp("baseline")
    good_tree(folder / "images")
    ran = run_python(["-c", _REPORT_PEAK, "data", "info", f"folder:{folder / 'images'}"], folder)
    assert ran.code == 0, ran.stderr
    peak_kib = int(ran.stderr.rsplit("VmPeak", 1)[1].split()[0])
    return ran, peak_kib * 1024


def assert_refused_in_bounds(ran: Ran, baseline: tuple[Ran, int], *words: str) -> str:
    normal, _ = baseline
    assert ran.code == 2, ran.stderr[-3000:]
    assert "Traceback" not in ran.stderr and "DecompressionBomb" not in ran.stderr, ran.stderr[-3000:]
    errors = [line for line in ran.stderr.splitlines() if line.startswith("cifarlab: error:")]
    assert len(errors) == 1 and len(errors[0]) < 1000, ran.stderr[-3000:]
    for word in words:
        assert word in errors[0], errors[0]
    # Start-up (importing torch) varies with the machine's load; the file may add at most 5 s and 1 GiB.
    assert ran.seconds - normal.seconds < 5, f"{ran.seconds:.1f} s against {normal.seconds:.1f} s"
    assert ran.max_rss - normal.max_rss < GIB, f"{ran.max_rss / GIB:.2f} GiB against {normal.max_rss / GIB:.2f} GiB"
    return errors[0]


def check_recipe(tmp_path: Path, baseline, text: str | bytes, *words: str) -> str:
    recipe = tmp_path / "hostile.yaml"
    recipe.write_bytes(text if isinstance(text, bytes) else text.encode())
    ran = run_python(["-m", "cifarlab", "train", str(recipe), "--print-config"], tmp_path,
                     address_space=baseline[1] + GIB)
    return assert_refused_in_bounds(ran, baseline, "hostile.yaml", *words)


def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path, baseline):
    check_recipe(tmp_path, baseline, alias_bomb(), "line 7", "10,000 values")


def test_twenty_thousand_nested_brackets_are_refused_at_the_depth_limit(tmp_path, baseline):
    check_recipe(tmp_path, baseline, "description: " + "[" * 20_000 + "]" * 20_000 + "\n", "line 1", "50 deep")


def test_a_string_over_1_mb_is_refused_without_being_read_whole(tmp_path, baseline):
    check_recipe(tmp_path, baseline, "description: " + "x" * 1_100_000 + "\n", "1,000,000 bytes")


def test_a_decompression_bomb_in_an_image_folder_is_refused_by_its_header(tmp_path, baseline):
    folder = good_tree(tmp_path / "images")
    (folder / "train" / "cat" / "bomb.png").write_bytes(bomb_png())
    ran = run_python(["-m", "cifarlab", "data", "info", f"folder:{folder}"], tmp_path,
                     address_space=baseline[1] + GIB)
    assert_refused_in_bounds(ran, baseline, "train/cat/bomb.png", "256,000,000 pixels", "data.max_image_pixels")


# ---------------------------------------------------------------- the limit and its recipe key


def test_the_pixel_limit_comes_from_the_recipe_key(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "cache"))
    folder = good_tree(tmp_path / "images")
    with pytest.raises(CifarlabError, match=r"is 32x32 \(1,024 pixels\), more than the 1,000 pixels .*max_image_pixels"):
        prepare_splits(DataConfig(dataset=f"folder:{folder}", val_size=0, max_image_pixels=1000), seed=0)
    splits = prepare_splits(DataConfig(dataset=f"folder:{folder}", val_size=0, max_image_pixels=1024), seed=0)
    assert splits.train_images.shape == (4, 3, 32, 32)


def test_an_image_between_pillows_warning_and_error_sizes_is_one_error_and_no_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "cache"))
    folder = good_tree(tmp_path / "images")
    (folder / "train" / "cat" / "0.png").write_bytes(png_header(10_000, 10_000))  # the first image read
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, stderr, seconds = cli(["data", "info", f"folder:{folder}"], tmp_path)
    assert code == 2 and "10000x10000 (100,000,000 pixels)" in stderr, stderr
    assert outcome_problem(code, stderr, seconds) is None
    assert not [w for w in caught if "DecompressionBomb" in type(w.message).__name__]


# ---------------------------------------------------------------- hostile YAML, fuzzed

FRAGMENTS = [
    "[" * 60 + "]" * 60, "{a: " * 60 + "1" + "}" * 60, "&x [1, *x]", "*undefined", "x" * 900_000, "é" * 1000,
    "!!binary aGVsbG8=", "!!python/object/apply:os.system ['touch PWNED']", "!!python/name:os.system",
    "!!python/object/new:builtins.dict {}", "!!set {a, b}", "!!omap [{a: 1}]", "2024-13-45", "!!timestamp x",
    "!!int " + "9" * 5000, "9" * 5000, "!!float .nan", "!foo bar", "{1: a, null: b, 1.5: c, true: d}", "{[1, 2]: x}",
    "{{a: 1}: x}", "{a: 1, a: 2}", "{<<: {a: 1}, b: 2}", "!!bool maybe", "!!int", "!!set [1]", '"\\x00\\ud800"', "~", "'\t'", "[a, b", "{a: 1}}",
]
PLACES = ["description: {}", "name: {}", "data: {{dataset: {}}}", "model: {{options: {{x: {}}}}}",
          "train: {{batch_size: {}}}", "? {}\n: 1", "extends: {}", "optim: {}"]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1"]


@st.composite
def hostile_yaml(draw) -> bytes:
    fragment = draw(st.one_of(
        st.sampled_from(FRAGMENTS),
        st.builds(flow_alias_chain, st.integers(1, 7), st.integers(1, 9)),
        st.builds(lambda depth: "[" * depth + "]" * depth, st.integers(1, 200)),
    ))
    text = "seed: 0\n" + draw(st.sampled_from(PLACES)).format(fragment) + "\n"
    encoding = draw(st.sampled_from(ENCODINGS))
    return text.encode(encoding, errors="replace")


@settings(max_examples=3 * EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=hostile_yaml())
@example(data=("description: " + "[" * 20_000 + "]" * 20_000 + "\n").encode())
@example(data=b"seed: 0\nb: 2024-13-45\n")
@example(data=codecs.BOM_UTF16_LE + "seed: 0\ndescription: café\n".encode("utf-16-le"))
@example(data=("extends: " + "x" * 5000 + "\n").encode())
def test_hostile_yaml_loads_or_is_one_error_line(data):
    with tempfile.TemporaryDirectory() as folder:
        recipe = Path(folder) / "r.yaml"
        recipe.write_bytes(data)
        code, stderr, seconds = cli(["train", str(recipe), "--print-config"], Path(folder))
        assert outcome_problem(code, stderr, seconds) is None, (outcome_problem(code, stderr, seconds), data[:200])
        assert code == 0 or stderr.count("\n") <= 1, stderr  # the error line is all it says
        assert not (Path(folder) / "PWNED").exists()


def test_a_utf16_recipe_written_by_a_windows_editor_loads(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(codecs.BOM_UTF16_LE + "seed: 3\ndescription: café\n".encode("utf-16-le"))
    code, stderr, _ = cli(["train", str(recipe), "--print-config"], tmp_path)
    assert code == 0, stderr


# ---------------------------------------------------------------- hostile image folders, fuzzed

# What a hostile entry is, and whether a folder holding it can still load (True) or must be refused.
ENTRIES = {
    "bomb_header": False, "warning_size_header": False, "empty_file": False, "truncated_png": False,
    "random_bytes": False, "sparse_300_mb": False, "link_to_outside_image": True, "link_to_outside_text": False,
    "link_to_outside_folder": True, "link_loop_to_root": False, "link_to_itself": False, "dangling_link": False,
    "pipe": False, "link_to_dev_zero": False, "folder_named_png": True,
}


def add_entry(folder: Path, outside: Path, kind: str, where: str) -> None:
    """Put one hostile entry of `kind` at `folder/where` (a `split/class/name.png` path)."""
    path = folder / where
    contents = {"bomb_header": png_header(100_000, 100_000), "warning_size_header": png_header(10_000, 10_000),
                "empty_file": b"", "truncated_png": png(1)[:60], "random_bytes": bytes(i * 97 % 251 for i in range(300))}
    links = {"link_to_outside_image": outside / "image.png", "link_to_outside_text": outside / "notes.txt",
             "link_loop_to_root": folder, "link_to_itself": path, "dangling_link": outside / "gone.png",
             "link_to_dev_zero": Path("/dev/zero")}
    if kind == "link_to_outside_folder":
        path.parent.symlink_to(outside / "more", target_is_directory=True)  # the whole class folder lives elsewhere
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind in contents:
        path.write_bytes(contents[kind])
    elif kind in links:
        path.symlink_to(links[kind])
    elif kind == "sparse_300_mb":
        with open(path, "wb") as file:
            file.truncate(300 * 2**20)  # holes: no disk used, nothing read before its size is checked
    elif kind == "pipe":
        os.mkfifo(path)  # opening it to read would wait for a writer forever
    elif kind == "folder_named_png":
        path.mkdir()


@st.composite
def hostile_entries(draw) -> list[tuple[str, str]]:
    kinds = draw(st.lists(st.sampled_from(sorted(ENTRIES)), min_size=1, max_size=3, unique=True))
    # A class linked in from elsewhere is a training class (one with test images only is refused, rightly).
    return [(kind, "train/new/x0.png" if kind == "link_to_outside_folder"
             else f"{draw(st.sampled_from(['train', 'test']))}/cat/x{i}.png") for i, kind in enumerate(kinds)]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(entries=hostile_entries())
@example(entries=[("pipe", "train/cat/x0.png")])
@example(entries=[("bomb_header", "train/cat/x0.png")])
@example(entries=[("link_to_outside_folder", "train/new/x0.png"), ("link_loop_to_root", "test/cat/x1.png")])
def test_hostile_image_folders_load_or_are_one_error_line(entries):
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        outside = good_tree(root / "outside")
        (outside / "image.png").write_bytes(png(7))
        (outside / "notes.txt").write_text("not an image\n")
        good_tree(outside / "more")  # a folder of images someone links a class to
        (outside / "more" / "0.png").write_bytes(png(8))
        folder = good_tree(root / "images")
        for kind, where in entries:
            add_entry(folder, outside, kind, where)
        os.environ["CIFARLAB_CACHE"] = str(root / "cache")
        try:
            code, stderr, seconds = cli(["data", "info", f"folder:{folder}"], root)
        finally:
            os.environ.pop("CIFARLAB_CACHE")
        assert outcome_problem(code, stderr, seconds) is None, (outcome_problem(code, stderr, seconds), entries)
        assert code == (0 if all(ENTRIES[kind] for kind, _ in entries) else 2), (entries, stderr)


@pytest.mark.parametrize("member, data, words", [
    ("train/cat/bomb.png", lambda: png_header(100_000, 100_000), "10,000,000,000 pixels"),
    ("train/cat/inflates.png", lambda: png(3) + bytes(200 * 2**20), "a file of 209,"),  # 200 MB of zeros, ~200 kB zipped
    ("train/cat/empty.png", lambda: b"", "no image format Pillow reads"),
])
def test_hostile_members_of_a_zip_are_one_error_line(tmp_path, monkeypatch, member, data, words):
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "cache"))
    archive = zip_tree(good_tree(tmp_path / "images"), tmp_path / "images.zip", {member: data()})
    code, stderr, seconds = cli(["data", "info", f"folder:{archive}"], tmp_path)
    assert outcome_problem(code, stderr, seconds) is None and code == 2, stderr
    assert member in stderr and words in stderr, stderr
