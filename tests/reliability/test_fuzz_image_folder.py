"""Image-folder datasets fuzzed: random bytes, wrong sizes, odd modes, empty classes and odd file names.

Each drawn tree (a folder, or the same tree zipped) is trained on for one step with
`cifarlab train ... data.dataset=folder:PATH`. It must train, or be refused with exit code 2 and one
`cifarlab: error:` line before anything is written; a class folder without any image is named in
one warning. A traceback is a bug.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from cifarlab.runs import LAST
from cifarlab.runs.checkpoint import load_checkpoint

from .outcome import EXAMPLES, check_outcome, train

# What one file of the tree holds; only the first kinds are images the dataset can use as they are.
GOOD = ("png", "jpeg", "grey_png", "rgba_png", "palette_png")
BAD = ("wrong_size", "random_bytes", "truncated_png", "empty", "text_as_png")
KINDS = GOOD + BAD
# Class and file names a user's folder may well have.
ODD_NAMES = ["cat", "Dog", "a b", "ünïcödé", "日本", "1", "007", "x" * 100, "-dash", "dot.ted", "UPPER", "tab\there",
             "emoji🙂", "'quote'", "semi;colon", "$HOME", "CON"]
# No name starts with ".": folders and files named so are hidden and skipped by design (like __MACOSX),
# so a tree whose only test images sit in one is rightly refused.
SIDE = 32


@dataclass(frozen=True)
class Member:
    split: str
    label: str
    name: str
    kind: str


def _image_bytes(kind: str, seed: int) -> bytes:
    """The bytes of one file of `kind`: a real (random-pixel) image, or something that only looks like one."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    if kind == "jpeg":
        image.save(buffer, "JPEG")
    elif kind == "grey_png":
        image.convert("L").save(buffer, "PNG")
    elif kind == "rgba_png":
        image.convert("RGBA").save(buffer, "PNG")
    elif kind == "palette_png":
        image.convert("P").save(buffer, "PNG")
    elif kind == "wrong_size":
        image.resize((SIDE + 1, SIDE - 8)).save(buffer, "PNG")
    elif kind == "random_bytes":
        return rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    elif kind == "truncated_png":
        image.save(buffer, "PNG")
        return buffer.getvalue()[: len(buffer.getvalue()) // 2]
    elif kind == "empty":
        return b""
    elif kind == "text_as_png":
        return b"not an image at all\n"
    else:
        image.save(buffer, "PNG")
    return buffer.getvalue()


def _extension(kind: str) -> str:
    return ".jpg" if kind == "jpeg" else ".png"


@st.composite
def trees(draw) -> tuple[list[str], list[Member], list[str]]:
    """(class names, files, names of class folders left empty) of one image tree."""
    classes = draw(st.lists(st.sampled_from(ODD_NAMES), min_size=2, max_size=4, unique_by=str.casefold))
    empty = draw(st.lists(st.sampled_from(classes), max_size=1, unique=True))
    members = []
    for label in classes:
        if label in empty:
            continue
        for split, most in (("train", 6), ("test", 3)):
            count = draw(st.integers(min_value=0 if split == "test" else 1, max_value=most))
            for number in range(count):
                kind = draw(st.sampled_from(KINDS) if draw(st.integers(0, 9)) == 0 else st.sampled_from(GOOD))
                stem = draw(st.sampled_from([f"{number}", f"img {number}", f"{number}.final", f"Ü{number}",
                                             f"{number}" * 30]))
                members.append(Member(split, label, stem + (_extension(kind).upper() if number == 2
                                                            else _extension(kind)), kind))
    return classes, members, empty


def write_tree(root: Path, tree, as_zip: bool) -> Path:
    """The tree as folders under `root/images`, or as `root/images.zip`; its path for folder:PATH."""
    classes, members, empty = tree
    files = {f"{m.split}/{m.label}/{m.name}": _image_bytes(m.kind, seed=i) for i, m in enumerate(members)}
    folders = [f"{split}/{label}/" for label in empty for split in ("train", "test")]
    if as_zip:
        path = root / "images.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for folder in folders:
                archive.writestr(folder, b"")
            for name, data in files.items():
                archive.writestr(name, data)
        return path
    path = root / "images"
    for folder in folders:
        (path / folder).mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


BASE = {
    "name": "folder_fuzz", "seed": 0,
    "data": {"val_size": 0},
    "model": {"name": "lenet"},
    "augment": {"crop_padding": 0},
    "optim": {"name": "sgd", "lr": 0.05},
    "train": {"steps": 1, "batch_size": 1, "log_every": 1, "device": "cpu"},
    "eval": {"test": False, "batch_size": 50},
    "log": {"sinks": ["jsonl"]},
}


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tree=trees(), as_zip=st.booleans())
def test_image_folders_train_or_are_refused_with_one_message(tree, as_zip):
    classes, members, empty = tree
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        dataset = write_tree(root, tree, as_zip)
        recipe = root / "recipe.yaml"
        recipe.write_text(yaml.safe_dump(BASE))
        out = root / "runs"
        before = os.environ.get("CIFARLAB_CACHE")
        os.environ["CIFARLAB_CACHE"] = str(root / "cache")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                code, stderr = train(recipe, [f"out_dir={out}", f"data.dataset=folder:{dataset}"], root)
        finally:
            if before is None:
                os.environ.pop("CIFARLAB_CACHE")
            else:
                os.environ["CIFARLAB_CACHE"] = before
        check_outcome(code, stderr, out)
        event("trained one step" if code == 0 else "refused")
        usable = all(m.kind in GOOD for m in members) and any(m.split == "test" for m in members)
        if usable:
            assert code == 0, f"a tree of readable same-size images was refused: {stderr}"
        if code == 0:  # every class with images was learnt, and each empty one is named in exactly one warning
            (run_dir,) = list(out.iterdir())
            learnt = load_checkpoint(run_dir / LAST)["classes"]
            # Folders whose names start with a dot are hidden (.ipynb_checkpoints, .git) and skipped.
            assert learnt == sorted({m.label for m in members if not m.label.startswith(".")}), stderr
            for label in empty:
                said = [str(w.message) for w in caught if f"/{label} " in str(w.message)]
                assert len(said) == 1, f"empty class folder {label!r}: {[str(w.message) for w in caught]}"
