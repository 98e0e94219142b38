"""Where a study lives: its folder, its Optuna storage, and the marker file that says the folder is a study.

    STUDY_DIR/
      tune.json        what was tuned (tune file, recipe, space, metric) and where the trials are stored
      study.db         the Optuna storage (SQLite), unless --storage named another
      trials/NNNN/     one ordinary run folder per trial (NNNN: the trial's number)
      logs/NNNN.log    a trial's progress lines when several workers share the terminal
      trials.csv, trials.md, optimization_history.png, param_importances.png   (the report)

`--storage` takes any Optuna storage URL (sqlite:///..., postgresql://...) or the path of a journal
file (Optuna's JournalStorage), which suits workers on several machines sharing a file system.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cifarlab.atomic import write_text
from cifarlab.errors import CifarlabError
from cifarlab.tuning.optuna_extra import import_optuna
from cifarlab.tuning.tune_file import TuneSpec

MARKER = "tune.json"
STUDY_DB = "study.db"
TRIALS = "trials"
LOGS = "logs"
IDENTITY_ATTR = "cifarlab_tune"  # the study's user attribute holding study_identity()


@dataclass(frozen=True)
class StudyPlace:
    """A study's folder, its storage (an Optuna URL or a journal file path) and its name in that storage."""

    folder: Path
    storage: str
    name: str

    def to_dict(self) -> dict:
        return {"folder": str(self.folder), "storage": self.storage, "name": self.name}

    @classmethod
    def from_dict(cls, data: dict) -> StudyPlace:
        return cls(Path(data["folder"]), data["storage"], data["name"])


def study_place(folder: Path, storage: Optional[str] = None) -> StudyPlace:
    """The place of the study in `folder`: study.db there unless `storage` names another. Writes nothing."""
    folder = Path(folder).resolve()
    if storage is None:
        url = f"sqlite:///{folder / STUDY_DB}"
    elif "://" in storage:
        url = storage
    else:
        url = str(Path(storage).resolve())  # a journal file: workers may start in other folders
    return StudyPlace(folder, url, folder.name)


def is_study_folder(path: str | Path) -> bool:
    """Whether `path` is a study folder `cifarlab tune` wrote (its marker, or at least its study.db)."""
    return (Path(path) / MARKER).is_file() or (Path(path) / STUDY_DB).is_file()


def read_place(folder: str | Path) -> StudyPlace:
    """The StudyPlace a study folder's marker records (a folder with only study.db: that database)."""
    folder = Path(folder).resolve()
    try:
        marker = json.loads((folder / MARKER).read_text())
    except FileNotFoundError:
        return study_place(folder)
    except (OSError, ValueError) as exc:
        raise CifarlabError(f"{folder / MARKER} is damaged ({exc}); it records the study's storage: restore it") from None
    storage = marker.get("storage")
    place = study_place(folder, storage)
    return StudyPlace(place.folder, place.storage, marker.get("study_name", place.name))


def write_marker(place: StudyPlace, spec: TuneSpec, default_storage: bool) -> None:
    """tune.json: the study's identity and storage (null: study.db beside it, so the folder can move)."""
    marker = {"study_name": place.name, "storage": None if default_storage else place.storage,
              **study_identity(spec), "tune_file": str(spec.path)}
    write_text(place.folder / MARKER, json.dumps(marker, indent=2) + "\n")


def study_identity(spec: TuneSpec) -> dict:
    """What makes two runs of `cifarlab tune` the same study: recipe, fixed overrides, space and metric."""
    return {"recipe": spec.recipe_label, "overrides": list(spec.overrides),
            "space": [dim.to_dict() for dim in spec.space], "metric": spec.metric}


def open_storage(url: str):
    """The Optuna storage behind `url`: an RDB URL, or a journal file path."""
    optuna = import_optuna()
    if "://" not in url:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url))
    # Several workers write one SQLite file: wait for the lock rather than fail at once.
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except Exception as exc:  # SQLAlchemy and drivers raise many kinds; all mean the same to the user
        raise CifarlabError(f"cannot open the study storage {url} ({type(exc).__name__}: {exc}); check the URL "
                            "(sqlite:///path/study.db, postgresql://user@host/db) or give a journal file path") from None


def load_study(place: StudyPlace, sampler=None, pruner=None):
    """The study at `place` (it must exist)."""
    optuna = import_optuna()
    try:
        return optuna.load_study(study_name=place.name, storage=open_storage(place.storage), sampler=sampler, pruner=pruner)
    except KeyError:
        raise CifarlabError(f"no study {place.name!r} in {place.storage}; run `cifarlab tune` for it first") from None
