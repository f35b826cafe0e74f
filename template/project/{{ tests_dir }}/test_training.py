"""Real training runs on CPU: what lands on disk and in TensorBoard, resume, tuning, DDP."""

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import QUIET, ROOT, TINY, TINY_NAME, logged_hparams, scalars, train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import trainer
from data import DATASETS
from model import MODELS
from model.base import BaseModel
from util import cli, components, runs

STAMP = r"\d{8}-\d{6}"


def global_step(checkpoint: Path) -> int:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]


def default_of(name: str) -> Any:
    return cli.parse([], trainer.DEFAULTS).parser.get_defaults()[name]


# ---- one two-epoch run: files, HPARAMS, metrics ------------------------------------------------------


def test_run_folder_holds_run_json_checkpoints_and_events(two_epoch_run: Path) -> None:
    info = json.loads((two_epoch_run / "run.json").read_text())
    assert info["model"] == trainer.DEFAULT_MODEL and info["dataset"] == trainer.DEFAULT_DATASET
    assert info["seed"] == trainer.DEFAULT_SEED and "lr" in info["model_hparams"]
    assert "batch_size" in info["data_hparams"]
    best = two_epoch_run / info["best_checkpoint"]
    assert best.is_file() and best.name.startswith("best-epoch=")
    assert "/" not in best.relative_to(two_epoch_run / "checkpoints").as_posix()  # "loss/val" made no folder
    assert (two_epoch_run / "checkpoints" / "last.ckpt").is_file()
    assert re.fullmatch(rf"{STAMP}_max_epochs=2", two_epoch_run.name)  # only --max_epochs differs from its default
    assert two_epoch_run.parent.name == f"{trainer.DEFAULT_MODEL}-{trainer.DEFAULT_DATASET}"


def test_hparams_tab_lists_hyperparameters_and_the_best_val_loss(two_epoch_run: Path) -> None:
    events = EventAccumulator(str(two_epoch_run))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    # the run's row without an experiment summary: TensorBoard then takes the columns from ALL runs it reads
    # (one run's experiment summary would hide other series' hyperparameters)
    assert "_hparams_/session_start_info" in content and "_hparams_/experiment" not in content
    hparams = logged_hparams(two_epoch_run)
    info = json.loads((two_epoch_run / "run.json").read_text())
    for name, value in {**info["model_hparams"], **info["data_hparams"], "seed": info["seed"], "max_epochs": 2}.items():
        assert name in hparams, name
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert hparams[name] == pytest.approx(value)

    val_loss = scalars(two_epoch_run, "loss/val")
    hp_val_loss = [(step, value) for step, value in scalars(two_epoch_run, "hp/val_loss") if not math.isnan(value)]
    assert len(val_loss) == 2  # one value per epoch
    # the best loss/val so far at each validation (the checkpoint trainer.test uses), the last one beside it
    assert len(hp_val_loss) == len(val_loss)  # after each validation (at the step that follows it)
    best_so_far = [min(value for _, value in val_loss[:i + 1]) for i in range(len(val_loss))]
    assert [value for _, value in hp_val_loss] == pytest.approx(best_so_far)
    assert [value for _, value in scalars(two_epoch_run, "hp/val_loss_last")] == pytest.approx(
        [value for _, value in val_loss])
    best_checkpoint = json.loads((two_epoch_run / "run.json").read_text())["best_checkpoint"]
    assert f"val_loss={best_so_far[-1]:.4f}" in best_checkpoint
    assert len(scalars(two_epoch_run, "hp/test_loss")) >= 1
    assert len(scalars(two_epoch_run, "loss/train")) == 2


def test_a_run_says_where_it_is_and_how_to_look_at_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = train(tmp_path, *TINY)
    out = capsys.readouterr().out
    assert f"Run directory: {run_dir}" in out
    assert f"tensorboard --logdir {run_dir.parent}" in out


def test_test_metrics_come_from_the_best_checkpoint(two_epoch_run: Path) -> None:
    best_name = json.loads((two_epoch_run / "run.json").read_text())["best_checkpoint"]
    found = re.search(r"val_loss=([\d.]+)\.ckpt", best_name)
    assert found is not None, best_name
    best_val = float(found.group(1))
    assert best_val == pytest.approx(min(value for _, value in scalars(two_epoch_run, "loss/val")), abs=1e-4)


def test_csv_logger_writes_beside_tensorboard(two_epoch_run: Path) -> None:
    with (two_epoch_run / "csv" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["loss/val"] for row in rows if row.get("loss/val")]


# ---- naming -------------------------------------------------------------------------------------------




def test_version_names_the_changed_hyperparameters(tmp_path: Path) -> None:
    lr = float(default_of("lr")) / 2
    run_dir = train(tmp_path, *TINY, "--lr", str(lr), "--batch_size", "32", "--seed", "7", "--name", "series")
    assert run_dir.parent == tmp_path / "series"
    expected = rf"{STAMP}_lr={re.escape(runs.format_value(lr))}_batch_size=32_{TINY_NAME}_seed=7"
    assert re.fullmatch(expected, run_dir.name), run_dir.name
    assert logged_hparams(run_dir)["lr"] == pytest.approx(lr)


def test_two_runs_in_the_same_second_get_two_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "timestamp", lambda: "20261124-101502")
    first = train(tmp_path, *TINY)
    second = train(tmp_path, *TINY)
    assert (first.name, second.name) == (f"20261124-101502_{TINY_NAME}", f"20261124-101502-2_{TINY_NAME}")
    assert (first / "run.json").is_file() and (second / "run.json").is_file()
    # the folder is claimed atomically: a concurrent claim of the same name takes the next one
    third, run_id = runs.create_run_dir(tmp_path / "other", "lr=0.1")
    fourth, _ = runs.create_run_dir(tmp_path / "other", "lr=0.1")
    assert (third.name, fourth.name) == ("20261124-101502_lr=0.1", "20261124-101502-2_lr=0.1")
    assert run_id == "20261124-101502"


def test_an_explicit_version_names_the_folder(tmp_path: Path) -> None:
    assert train(tmp_path, *TINY, "--version", "baseline") == tmp_path / cli.parse([], trainer.DEFAULTS).args.name / "baseline"


def test_an_explicit_version_that_holds_a_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = train(tmp_path, *TINY, "--version", "baseline")
    before = sorted(p.name for p in run_dir.rglob("*"))
    with pytest.raises(SystemExit):
        train(tmp_path, *TINY, "--version", "baseline")
    assert "already holds a run" in capsys.readouterr().err
    assert sorted(p.name for p in run_dir.rglob("*")) == before


def test_a_setting_found_wrong_at_fit_start_is_a_one_line_error(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train(tmp_path / "logs", "--scheduler", "cosine", "--max_epochs", "-1", "--limit_train_batches", "1")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("needs a bounded run: set --max_epochs or --max_steps")
    assert list(tmp_path.iterdir()) == []  # a refused run leaves no folder, not even an empty series


def test_runs_live_in_the_projects_logs_whatever_the_working_directory(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.parse([], trainer.DEFAULTS).args.save_dir == ROOT / "logs" == runs.DEFAULT_SAVE_DIR
    assert cli.parse(["--save_dir", "elsewhere"], trainer.DEFAULTS).args.save_dir == Path("elsewhere")  # as given


def test_ranks_of_one_launch_share_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # what a re-executed DDP rank, torchrun or SLURM task sees: the run id chosen once, in the environment
    monkeypatch.setenv(runs.RUN_ID_ENV, "20261124-101502")
    monkeypatch.setenv("LOCAL_RANK", "1")
    run_dir, _ = runs.create_run_dir(tmp_path, "lr=0.1")
    assert run_dir == tmp_path / "20261124-101502_lr=0.1" and not run_dir.exists()  # rank 1 creates nothing
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert runs.create_run_dir(tmp_path, "lr=0.1")[0] == run_dir and run_dir.is_dir()  # rank 0 does
    monkeypatch.delenv(runs.RUN_ID_ENV)
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert runs.create_run_dir(tmp_path, "")[0].name == "slurm-4242"


def test_a_slurm_run_is_named_after_its_job_and_found_again_when_requeued(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (runs.RUN_ID_ENV, "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    args = ["--max_epochs", "1", "--limit_train_batches", "2", "--limit_val_batches", "1", "--limit_test_batches", "1"]
    run_dir = train(tmp_path, *args)
    assert run_dir.name == f"slurm-77_{TINY_NAME}"
    # SLURM requeued the job (SLURM_RESTART_COUNT): the same command continues in the same folder (no new epoch)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert train(tmp_path, *args) == run_dir
    assert [path.name for path in run_dir.parent.iterdir()] == [f"slurm-77_{TINY_NAME}"]
    assert global_step(run_dir / "checkpoints" / "last.ckpt") == 2
    # the same command a second time in one allocation, not requeued, is a new run (it used to train nothing)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    second = train(tmp_path, *args)
    assert second != run_dir and second.name == f"slurm-77-2_{TINY_NAME}"
    # another job, or another command in this job, is another run
    assert train(tmp_path, *args, "--max_epochs", "2") not in (run_dir, second)
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "80")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert runs.slurm_run_id() == "slurm-80_3"


def test_last_checkpoint_follows_every_epoch_even_without_improvement(tmp_path: Path) -> None:
    # lr 0: the validation loss never improves, so the best checkpoint stays at epoch 0
    run_dir = train(tmp_path, "--max_epochs", "3", "--limit_train_batches", "2", "--limit_val_batches", "1",
                    "--limit_test_batches", "1", "--lr", "0", "--early_stopping_patience", "none")
    assert global_step(run_dir / "checkpoints" / "last.ckpt") == 6
    assert json.loads((run_dir / "run.json").read_text())["best_checkpoint"].startswith("checkpoints/best-epoch=0-")


def test_early_stopping_says_when_and_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train(tmp_path, "--max_epochs", "10", "--limit_train_batches", "2", "--limit_val_batches", "1",
          "--limit_test_batches", "1", "--lr", "0", "--early_stopping_patience", "2")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Early stopping")]
    assert len(lines) == 1
    assert re.fullmatch(r"Early stopping at epoch 2: loss/val has not improved on its best [\d.]+ for 2 "
                        r"validations \(--early_stopping_patience 2\)\.", lines[0]), lines[0]


def test_trimming_event_files_drops_the_steps_a_resumed_run_logs_again(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for step in range(10):
        writer.add_scalar("loss/train", float(step), step)
    writer.close()

    def steps() -> list[int]:
        events = EventAccumulator(str(tmp_path), purge_orphaned_data=False)
        events.Reload()
        return [event.step for event in events.Scalars("loss/train")] if "loss/train" in events.Tags()["scalars"] else []

    runs.trim_events(tmp_path, 6)
    assert steps() == [0, 1, 2, 3, 4, 5]
    runs.trim_events(tmp_path, 6)  # nothing left to drop
    assert steps() == [0, 1, 2, 3, 4, 5]
    runs.trim_events(tmp_path, 0)  # a fresh start: all gone, and files left with only a header too
    assert steps() == [] and not list(tmp_path.glob("events.*"))


def test_fast_dev_run_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert trainer.main(["--save_dir", str(tmp_path / "logs"), *QUIET, "--fast_dev_run", "true"]) is None
    assert list(tmp_path.iterdir()) == []


# ---- errors a user can cause --------------------------------------------------------------------------


class _ClassifierOnly(BaseModel):
    tasks = ("classification",)


def test_incompatible_pair_fails_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    info = components.declared_info(DATASETS[trainer.DEFAULT_DATASET]())
    assert info is not None
    monkeypatch.setitem(MODELS, "classifier_only", _ClassifierOnly)
    if _ClassifierOnly.incompatibility(info) is None:
        pytest.skip(f"the default dataset is a {info.task} task")
    with pytest.raises(SystemExit) as exit_info:
        train(tmp_path, "--model", "classifier_only")
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "classifier_only" in message and trainer.DEFAULT_DATASET in message and info.task in message
    assert not tmp_path.joinpath("classifier_only-" + trainer.DEFAULT_DATASET).exists()


@pytest.mark.parametrize(("flag", "value"), [("--strategy", "no_such_strategy"), ("--devices", "banana"),
                                            ("--devices", "-1"), ("--accelerator", "no_such_device")])
def test_settings_the_trainer_rejects_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          flag: str, value: str) -> None:
    if flag == "--devices" and torch.cuda.is_available():
        pytest.skip("GPUs accept device lists")
    with pytest.raises(SystemExit) as exit_info:
        train(tmp_path / "logs", flag, value)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"trainer.py: error: {flag} {value}: "), err  # names the flag, as typed
    assert "Traceback" not in "\n".join(err)
    assert list(tmp_path.iterdir()) == []  # the run folder made for it is gone again, and its series


def test_barebones_runs_on_its_own_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert trainer.main(["--save_dir", str(tmp_path / "logs"), *QUIET, "--barebones", "true", *TINY]) is None
    assert "barebones: no logger, checkpoints, callbacks or run folder" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_help_shows_the_defaults_the_trainer_applies(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        trainer.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"max_epochs is {trainer.DEFAULT_MAX_EPOCHS} when max_steps and max_time are unset" in text
    assert "DD:HH:MM:SS" in text  # --max_time, from Lightning's own docstring
    assert "--early_stopping_patience" in text and f"default: {trainer.EARLY_STOPPING_PATIENCE}" in text


def test_resume_of_nothing_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train(tmp_path, "--resume", "last")
    assert "no run with checkpoints in" in capsys.readouterr().err


# ---- resume -------------------------------------------------------------------------------------------


def test_resume_last_skips_a_run_that_crashed_before_its_first_checkpoint(two_epoch_run: Path, tmp_path: Path) -> None:
    series = tmp_path / "mlp-data"
    info = json.loads((two_epoch_run / "run.json").read_text())
    for version, started, has_checkpoint in (("older", 1.0, True), ("crashed", 2.0, False)):
        (series / version / runs.CHECKPOINTS).mkdir(parents=True)
        runs.write_info(series / version, {**info, "started": started})
        if has_checkpoint:
            (series / version / runs.CHECKPOINTS / runs.LAST).write_bytes(b"")
    assert runs.find_run("last", series) == series / "older"
    (series / "older" / runs.CHECKPOINTS / runs.LAST).unlink()
    with pytest.raises(runs.RunError, match="no run with checkpoints"):
        runs.find_run("last", series)


def test_resume_continues_in_the_same_folder_at_the_right_step(tmp_path: Path) -> None:
    limits = ["--limit_train_batches", "3", "--limit_val_batches", "1", "--limit_test_batches", "1"]
    run_dir = train(tmp_path, "--max_epochs", "1", *limits, "--lr", "0.002")
    last = run_dir / "checkpoints" / "last.ckpt"
    assert global_step(last) == 3

    # the same command again with --resume (repeating a hyperparameter is fine), and a higher max_epochs
    assert train(tmp_path, "--resume", str(run_dir), "--max_epochs", "2", *limits, "--lr", "0.002") == run_dir
    assert global_step(last) == 6
    assert train(tmp_path, "--resume", "last", "--max_epochs", "3") == run_dir  # newest run of the series
    assert global_step(last) == 9
    assert [path.name for path in run_dir.parent.iterdir()] == [run_dir.name]  # no new folder
    # the curves continue: one train-loss point per epoch across the three sessions, at the epochs' last steps
    assert sorted(step for step, _ in scalars(run_dir, "loss/train")) == [2, 5, 8]
    assert json.loads((run_dir / "run.json").read_text())["model_hparams"]["lr"] == 0.002


def test_resume_refuses_to_change_what_the_checkpoint_fixes(two_epoch_run: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        trainer.main(["--resume", str(two_epoch_run), "--lr", "0.5"])
    assert "--lr cannot change when resuming" in capsys.readouterr().err


# ---- tuning and training workflows --------------------------------------------------------------------


# The tuners run on whole epochs of the default data: with one or two batches per epoch they would pay
# an epoch's fixed costs for every step.
ONE_EPOCH = ["--max_epochs", "1", "--limit_val_batches", "1", "--limit_test_batches", "1"]


def test_lr_find_applies_and_records_the_learning_rate(tmp_path: Path) -> None:
    run_dir = train(tmp_path, *ONE_EPOCH, "--lr_find")
    lr = json.loads((run_dir / "run.json").read_text())["model_hparams"]["lr"]
    assert lr != default_of("lr")
    assert (run_dir / "lr_find.png").stat().st_size > 0
    assert f"lr={runs.format_value(lr)}" in run_dir.name
    assert logged_hparams(run_dir)["lr"] == pytest.approx(lr)


def test_scale_batch_size_records_the_batch_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = train(tmp_path, *ONE_EPOCH, "--scale_batch_size")
    batch_size = json.loads((run_dir / "run.json").read_text())["data_hparams"]["batch_size"]
    assert batch_size > default_of("batch_size") and f"batch_size={batch_size}" in run_dir.name
    assert logged_hparams(run_dir)["batch_size"] == batch_size
    assert f"batch size set to {batch_size}" in capsys.readouterr().out
    # On CPU memory never runs out: the search ends at the whole train split, not at the next power of two.
    datamodule = DATASETS[trainer.DEFAULT_DATASET]()
    datamodule.setup("fit")
    assert batch_size == len(datamodule.train_dataloader().dataset)


def test_swa_tests_and_keeps_the_averaged_weights(tmp_path: Path) -> None:
    run_dir = train(tmp_path, "--max_epochs", "2", "--limit_train_batches", "2", "--limit_val_batches", "1",
                    "--limit_test_batches", "1", "--swa")
    assert json.loads((run_dir / "run.json").read_text())["best_checkpoint"] == "checkpoints/swa.ckpt"
    assert (run_dir / "checkpoints" / "swa.ckpt").is_file()


def test_trainer_flags_shape_the_run(tmp_path: Path) -> None:
    run_dir = train(tmp_path, "--max_epochs", "2", "--overfit_batches", "2", "--accumulate_grad_batches", "2",
                    "--val_check_interval", "1", "--gradient_clip_val", "0.5", "--profiler", "simple",
                    "--early_stopping_patience", "none", "--limit_test_batches", "1")
    # two batches per epoch, one optimizer step per two batches, validation after every batch
    assert global_step(run_dir / "checkpoints" / "last.ckpt") == 2
    assert len(scalars(run_dir, "loss/val")) == 4


# ---- several processes --------------------------------------------------------------------------------


@pytest.mark.slow
def test_ddp_on_cpu_leaves_exactly_one_run(tmp_path: Path) -> None:
    # A subprocess: Lightning's DDP re-executes the command per rank (inside pytest it would re-run pytest).
    env = {key: value for key, value in os.environ.items() if key != runs.RUN_ID_ENV}
    result = subprocess.run(
        [sys.executable, "trainer.py", "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp",
         "--max_epochs", "2", "--save_dir", str(tmp_path), *QUIET],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = [path for path in tmp_path.glob("*/*") if path.is_dir()]
    assert len(run_dirs) == 1, run_dirs
    run_dir = run_dirs[0]
    assert (run_dir / "run.json").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert f"Run directory: {run_dir}" in result.stdout
    assert len(scalars(run_dir, "loss/val")) == 2
