"""sweep.py for real: Optuna studies whose trials are ordinary trainer.py runs (tiny ones), several workers at
a time, a study continued after its worker was killed, pruning, a grid, and bad input refused in one line."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import QUIET, ROOT

pytestmark = pytest.mark.slow

TRIAL = [*QUIET, "--max_epochs", "2", "--limit_train_batches", "2", "--limit_val_batches", "1",
         "--limit_test_batches", "1", "--early_stopping_patience", "none"]


def sweep(save_dir: Path, *flags: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "sweep.py"), "--save_dir", str(save_dir), *TRIAL, *flags],
                          capture_output=True, text=True, timeout=timeout, check=False)


def study_of(save_dir: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{save_dir / name / 'study.db'}")


def states(study: optuna.Study) -> dict[str, int]:
    found: dict[str, int] = {}
    for trial in study.trials:
        found[trial.state.name] = found.get(trial.state.name, 0) + 1
    return found


def test_a_local_sweep_with_two_workers_runs_ordinary_runs(tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    proc = sweep(save_dir, "--study", "s", "--trials", "4", "--workers", "2", "--sampler_seed", "1",
                 "--lr", "1e-3:1e-1:log", "--hidden", "8,16")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study = study_of(save_dir, "s")
    # running trials count toward --trials; two workers ending trials in the same instant may still both start
    # one for the last place: one more, never a failure
    assert set(states(study)) == {"COMPLETE"} and 4 <= states(study)["COMPLETE"] <= 5
    workers = {trial.user_attrs["worker"] for trial in study.trials}
    assert len(workers) == 2  # two worker processes shared the trials
    for trial in study.trials:
        run_dir = Path(trial.user_attrs["run_dir"])
        assert run_dir.parent == save_dir / "s"  # the study's series
        info = json.loads((run_dir / "run.json").read_text())
        assert info["trial"] == {"study": "s", "number": trial.number}
        assert info["best_val_loss"] == pytest.approx(trial.value)
        assert info["model_hparams"]["hidden"] == trial.params["hidden"] in (8, 16)
        assert run_dir.name.startswith(f"trial-{trial.number}_") and f"hidden={trial.params['hidden']}" in run_dir.name
        assert (run_dir / "checkpoints").is_dir() and list(run_dir.glob("events.out.tfevents.*"))
    best = study.best_trial
    assert f"trial {best.number}: {best.value:.6g}" in proc.stdout
    command = next(line for line in proc.stdout.splitlines() if line.startswith("Train the best again: python "))
    assert "--name s" in command and f"--hidden {best.params['hidden']}" in command
    plots = [save_dir / "s" / f"{name}.png" for name in ("optimization_history", "param_importances",
                                                         "parallel_coordinate")]
    assert all(str(plot) in proc.stdout for plot in plots), proc.stdout  # "Plots: ..." names each file
    for plot in plots:  # Optuna's plots beside the study, drawn
        png = plot.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, (plot, len(png))


def start_and_wait_for_a_checkpoint(save_dir: Path, study: str, flags: list[str],
                                    capture: bool = False) -> subprocess.Popen[bytes]:
    """sweep.py in a process group of its own (as a terminal starts it), once a trial has its first checkpoint."""
    command = [sys.executable, str(ROOT / "sweep.py"), "--save_dir", str(save_dir), *TRIAL, *flags]
    sweeper = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE if capture else subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list((save_dir / study).glob("*/checkpoints/last.ckpt")):  # a trial is training
        assert time.monotonic() < deadline and sweeper.poll() is None
        time.sleep(0.02)
    return sweeper


LONGER = ["--max_epochs", "40", "--limit_train_batches", "2"]  # a trial long enough to be stopped halfway


def test_a_killed_sweep_continues_its_trial_with_the_same_command(tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    flags = ["--study", "k", "--trials", "3", "--hidden", "4:64", *LONGER]
    sweeper = start_and_wait_for_a_checkpoint(save_dir, "k", flags)
    os.killpg(sweeper.pid, signal.SIGKILL)  # sweep.py, its worker and the trial die at once
    sweeper.wait()
    (killed,) = study_of(save_dir, "k").trials
    assert killed.state == optuna.trial.TrialState.RUNNING
    run_dir = Path(killed.user_attrs["run_dir"])

    proc = sweep(save_dir, *flags)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "trial 0: stopped with its worker (pid" in proc.stdout and "trial 1 complete (continued trial 0)" in proc.stdout
    study = study_of(save_dir, "k")
    assert states(study) == {"FAIL": 1, "COMPLETE": 3}  # the killed one is not counted as done
    continued = study.trials[1]
    assert continued.params == killed.params and continued.user_attrs["run_dir"] == str(run_dir)
    assert json.loads((run_dir / "run.json").read_text())["trial"]["number"] == 0  # its own run, carried on
    import torch

    step = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert step == 40 * 2  # to the planned end, in the one folder
    assert "1 interrupted and continued" in proc.stdout


def test_a_killed_worker_is_replaced_and_its_trial_continued(tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    flags = ["--study", "w", "--trials", "2", "--hidden", "4:64", *LONGER]
    sweeper = start_and_wait_for_a_checkpoint(save_dir, "w", flags)
    (worker,) = [int(pid) for pid in (Path("/proc") / str(sweeper.pid) / "task" / str(sweeper.pid) / "children")
                 .read_text().split()]
    os.kill(worker, signal.SIGKILL)  # the worker alone: sweep.py starts another, which continues the trial
    assert sweeper.wait(timeout=300) == 0
    study = study_of(save_dir, "w")
    assert states(study) == {"FAIL": 1, "COMPLETE": 2}
    assert study.trials[1].user_attrs["run_dir"] == study.trials[0].user_attrs["run_dir"]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_saves_the_running_trials_and_the_same_command_continues_them(tmp_path: Path, signum: int,
                                                                           code: int) -> None:
    save_dir = tmp_path / "logs"
    flags = ["--study", "c", "--trials", "2", "--hidden", "4:64", *LONGER]
    sweeper = start_and_wait_for_a_checkpoint(save_dir, "c", flags, capture=True)
    os.killpg(sweeper.pid, signum)  # what a terminal's Ctrl-C does: the sweep, its worker and its trial all get it
    _, err = sweeper.communicate(timeout=120)
    assert sweeper.returncode == code, err
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert lines == ["sweep.py: interrupted; the running trials saved their state: the same command continues them"]
    stopped, retry = study_of(save_dir, "c").trials
    assert stopped.state == optuna.trial.TrialState.FAIL  # failed, and queued again with the same parameters
    assert retry.state == optuna.trial.TrialState.WAITING and retry.params == stopped.params
    run_dir = Path(stopped.user_attrs["run_dir"])
    import torch

    stopped_at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 0 < stopped_at < 40 * 2
    proc = sweep(save_dir, *flags)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study = study_of(save_dir, "c")
    continued = study.trials[1]
    assert continued.user_attrs["run_dir"] == str(run_dir) and continued.params == stopped.params
    assert states(study) == {"FAIL": 1, "COMPLETE": 2} and "1 interrupted and continued" in proc.stdout
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 40 * 2


def test_a_sweep_whose_trials_cannot_succeed_stops_after_a_few(tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    proc = sweep(save_dir, "--study", "x", "--trials", "20", "--lr", "1e-3:1e-1", "--accelerator", "gpu")
    assert proc.returncode == 1
    assert "3 trials failed one after another, the first with: --accelerator gpu" in proc.stderr, proc.stderr
    assert states(study_of(save_dir, "x")) == {"FAIL": 3}


def test_pruning_stops_trials_worse_than_the_median(tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    good = sweep(save_dir, "--study", "p", "--prune", "--prune_warmup", "1", "--trials", "2", "--lr", "0.02:0.05",
                 "--max_epochs", "4")
    assert good.returncode == 0, good.stdout + good.stderr
    # the same study continued with learning rates far too small to learn anything in a few steps
    bad = sweep(save_dir, "--study", "p", "--prune", "--prune_warmup", "1", "--trials", "4", "--lr", "1e-8:1e-7",
                "--max_epochs", "4")
    assert bad.returncode == 0, bad.stdout + bad.stderr
    study = study_of(save_dir, "p")
    assert states(study) == {"COMPLETE": 2, "PRUNED": 2}, bad.stdout
    for trial in study.trials:
        run_dir = Path(trial.user_attrs["run_dir"])
        info = json.loads((run_dir / "run.json").read_text())
        assert info["pruned"] is (trial.state == optuna.trial.TrialState.PRUNED)
        if info["pruned"]:  # stopped early, and still a run: checkpoints, events, a tested best checkpoint
            assert len(trial.intermediate_values) < 4
            assert info["best_checkpoint"] and (run_dir / info["best_checkpoint"]).is_file()
    assert "pruned" in bad.stdout


def test_a_grid_search_covers_its_grid(tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    proc = sweep(save_dir, "--study", "g", "--sampler", "grid", "--workers", "2", "--hidden", "4,8",
                 "--optimizer", "adam,sgd", "--max_epochs", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study = study_of(save_dir, "g")
    covered = {(trial.params["hidden"], trial.params["optimizer"]) for trial in study.trials
               if trial.state == optuna.trial.TrialState.COMPLETE}
    assert covered == {(4, "adam"), (4, "sgd"), (8, "adam"), (8, "sgd")}


def test_a_sweep_with_folds_optimizes_the_mean_of_the_folds(tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    proc = sweep(save_dir, "--study", "f", "--sampler", "grid", "--hidden", "4,8", "--folds", "2", "--max_epochs", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study = study_of(save_dir, "f")
    assert states(study) == {"COMPLETE": 2}
    runs = [json.loads(path.read_text()) for path in (save_dir / "f").glob("*/run.json")]
    assert len(runs) == 4  # two trials of two folds, all in the study's series
    for trial in study.trials:
        folds_of_trial = [run for run in runs if run["model_hparams"]["hidden"] == trial.params["hidden"]]
        assert sorted(run["argv"][-1] for run in folds_of_trial) == ["0", "1"]  # --fold 0, --fold 1
        assert trial.value == pytest.approx(folds_of_trial[0]["folds_val_loss"]["mean"])


def test_a_study_keeps_its_choices(tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    first = sweep(save_dir, "--study", "c", "--trials", "1", "--hidden", "4,8", "--max_epochs", "1")
    assert first.returncode == 0, first.stdout + first.stderr
    again = sweep(save_dir, "--study", "c", "--trials", "2", "--hidden", "16,32", "--max_epochs", "1")
    assert again.returncode == 2 and "--hidden" in again.stderr.splitlines()[-1] and "Traceback" not in again.stderr
    assert len(study_of(save_dir, "c").trials) == 1


@pytest.mark.parametrize(("flags", "says"), [
    (["--lr", "0.1:0.1"], "empty range"),
    (["--lr", "0.1:0.01"], "empty range"),
    (["--lr", "0:0.1:log"], "log range"),
    (["--hidden", "1.5:8"], "--hidden 1.5: expected int"),
    (["--lr", "nan:1"], "--lr nan: expected float"),
    (["--lr", "0.1:inf"], "--lr inf: expected float"),
    (["--trials", "-1", "--lr", "0.001:0.1"], "1 or more"),
    (["--workers", "0", "--lr", "0.001:0.1"], "1 or more"),
    (["--devices", "2", "--lr", "0.001:0.1"], "one device"),
    (["--no_such_flag", "1"], "unknown flag"),
    (["--optimizer", "adam,rmsprop"], "rmsprop"),
    (["--storage", "postgresql+psycopg2://nobody@127.0.0.1:1/none"], "cannot open"),
    (["--sampler", "grid", "--lr", "0.001:0.1"], "grid"),
    (["--prune", "--folds", "3", "--lr", "0.001:0.1"], "--prune with --folds"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_trial(tmp_path: Path, flags: list[str], says: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    # In this process (sweep.main is what `python sweep.py` runs): a subprocess per case would pay the imports
    # of Lightning and Optuna nine times.
    import sweep as sweep_script

    save_dir = tmp_path / "logs"
    with pytest.raises(SystemExit) as exit_info:
        sweep_script.main(["--save_dir", str(save_dir), *TRIAL, *flags])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len([line for line in lines if "error" in line]) == 1 and says in lines[-1], err
    assert not save_dir.exists()  # nothing written
