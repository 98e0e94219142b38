import csv
import json
import shutil

import pytest
from PIL import Image

from cifarlab.cli import main
from cifarlab.runs import read_metrics
from tests.experiments.conftest import RUN_NAMES

pytestmark = pytest.mark.slow  # its fixtures train several real runs


@pytest.mark.slow
def test_report_of_a_sweep_writes_table_csv_and_plots(zoo_sweep, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(zoo_sweep), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "report.csv")))
    assert [r["name"] for r in rows] == RUN_NAMES  # in the sweep's grid order
    by_name = {r["name"]: r for r in rows}
    lenet = by_name["lenet_seed0"]
    run_dir = zoo_sweep / "runs" / "lenet_seed0"
    test = json.loads((run_dir / "eval_test.json").read_text())
    epochs = [r for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "epoch"]
    assert float(lenet["test_top1"]) == round(100 * test["top1"], 2) and float(lenet["test_ece"]) == round(test["ece"], 4)
    assert float(lenet["train_time_s"]) == round(sum(r["time_s"] for r in epochs), 3)
    assert lenet["model"] == "lenet" and int(lenet["params"]) > 0 and int(lenet["macs"]) > 0
    assert int(by_name["convnet5_seed0"]["params"]) != int(lenet["params"])  # each run's own model is counted
    assert float(lenet["images_per_s"]) > 0
    markdown = (out / "report.md").read_text()
    assert markdown.count("| lenet_seed") == 2 and "| convnet5_seed1 | convnet5 |" in markdown
    assert "| lenet_seed0 | lenet |" in printed
    for name in ("curves.png", "accuracy_vs_cost.png"):
        assert Image.open(out / name).size[0] > 500


def test_report_mixes_run_folders_and_sweeps_and_tells_same_names_apart(zoo_sweep, tmp_path):
    other = tmp_path / "other" / "runs" / "lenet_seed0"
    shutil.copytree(zoo_sweep / "runs" / "lenet_seed0", other)
    out = tmp_path / "report"
    assert main(["report", str(other), str(zoo_sweep), str(zoo_sweep / "runs" / "lenet_seed1"), "--out", str(out)]) == 0
    names = [r["name"] for r in csv.DictReader(open(out / "report.csv"))]
    # A run given twice is compared once; two runs of one name are named with their sweep.
    assert names == ["other/lenet_seed0", "zoo/lenet_seed0", "zoo/lenet_seed1", "zoo/convnet5_seed0", "zoo/convnet5_seed1"]


def test_report_of_a_folder_without_runs_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 2
    assert "neither a run folder" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_report_compares_runs_on_corruptions_once_they_were_scored(zoo_sweep, tmp_path):
    from cifarlab.cli import main as cli
    from cifarlab.robustness.evaluation import evaluate_robustness, write_robustness

    scored = tmp_path / "scored"
    shutil.copytree(zoo_sweep / "runs" / "lenet_seed0", scored)
    result = evaluate_robustness(scored, corruptions=["gaussian_noise", "contrast"], severities=[1, 5], limit=50)
    write_robustness(scored, result)
    out = tmp_path / "report"
    assert cli(["report", str(scored), str(zoo_sweep / "runs" / "lenet_seed1"), "--out", str(out)]) == 0
    rows = {r["name"]: r for r in csv.DictReader(open(out / "report.csv"))}
    assert float(rows["scored"]["corrupted_top1"]) == round(100 * result["mean_corrupted_accuracy"], 2)
    assert rows["lenet_seed1"]["corrupted_top1"] == ""
    assert "corrupted top-1 (%)" in (out / "report.md").read_text()


def test_a_report_whose_last_plot_cannot_be_written_leaves_no_partial_folder(zoo_sweep, tmp_path, capsys,
                                                                            monkeypatch):
    import cifarlab.reports.compare_runs as compare_runs
    from cifarlab.errors import CifarlabError

    def disk_full(*args, **kwargs):  # report.md, report.csv and curves.png are written by then
        raise CifarlabError("cannot write accuracy_vs_cost.png (No space left on device): the disk is full")

    monkeypatch.setattr(compare_runs, "plot_accuracy_vs_cost", disk_full)
    out = tmp_path / "report"
    assert main(["report", str(zoo_sweep), "--out", str(out)]) == 2
    assert "the disk is full" in capsys.readouterr().err
    assert not out.exists()
