"""A sweep says at once how many runs it makes, and refuses a grid far larger than anyone means."""

import time

from cifarlab.cli import main


def _values(n: int) -> str:
    return ",".join(str(i) for i in range(n))


def test_a_grid_of_a_million_points_is_refused_at_once_naming_its_axes(tmp_path, capsys):
    start = time.perf_counter()
    code = main(["sweep", "quick", "--grid", f"seed={_values(1000)}", f"optim.lr={','.join(f'0.{i + 1}' for i in range(1000))}",
                 "--out", str(tmp_path / "sweep")])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2 and err.count("cifarlab: error:") == 1
    assert "1,000,000 runs" in err and "1,000 seed" in err and "--max-runs 1000000" in err
    assert not (tmp_path / "sweep").exists()
    assert elapsed < 5  # no recipe was resolved for any of the million points


def test_max_runs_lowers_the_limit_and_the_count_is_said_before_anything_runs(tmp_path, capsys):
    code = main(["sweep", "quick", "--grid", "seed=0,1,2", "--max-runs", "2", "--out", str(tmp_path / "sweep")])
    assert code == 2 and "this sweep would make 3 runs (3 seed), more than the 2 allowed" in capsys.readouterr().err


def test_a_study_of_more_trials_than_max_runs_is_refused_before_its_folder_exists(tmp_path, capsys):
    code = main(["tune", "tunes/fast94", "--trials", "20000", "--out", str(tmp_path / "study")])
    err = capsys.readouterr().err
    assert code == 2 and "this study would run 20,000 trials, more than the 10,000 allowed" in err
    assert not (tmp_path / "study").exists()


def test_a_model_axis_with_the_recipes_options_of_another_model_is_refused_before_any_run(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "quick", "--grid", "model.name=lenet,convnet5", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("cifarlab: error:") == 1
    assert "sweep point lenet: model 'lenet' has no option width_multiplier" in err and "model.options={}" in err
    assert not out.exists()


def test_the_readme_tour_sweep_plans_every_point():
    import shlex
    from pathlib import Path

    from cifarlab.sweeps.grid import grid_points
    from cifarlab.sweeps.grid_sweep import sweep_spec

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (line,) = [line for line in readme.splitlines() if line.startswith("cifarlab sweep quick --grid")]
    words = shlex.split(line.split("#")[0])
    grid = words[words.index("--grid") + 1 : words.index("--out")]
    spec = sweep_spec("quick", grid)
    assert len(grid_points(spec.recipe, spec.grid, spec.overrides)) == 4  # 2 lengths x 2 seeds, each one checked
