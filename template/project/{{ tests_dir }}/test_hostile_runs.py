"""Hostile states around a run: broken or foreign files in a run folder, a checkpoint cut short, two processes
on one run, a folder deleted while training, inputs no model can predict from. Each refusal is one line, a non-zero exit
and nothing changed on disk; what can go on (a readable older checkpoint, no validation at all) goes on.

One short run is trained once for the whole file; tests that write get a copy of it.
"""

import contextlib
import hashlib
import json
import os
import resource
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import QUIET, ROOT, train
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import predict
import sweep
import trainer
from util import runs

SHORT = ["--limit_train_batches", "2", "--limit_val_batches", "1", "--limit_test_batches", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real two-epoch run (read-only: tests that write use `run`, a copy)."""
    return train(tmp_path_factory.mktemp("hostile") / "logs", "--max_epochs", "2", *SHORT)


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "logs" / trained.parent.name / trained.name
    shutil.copytree(trained, copy)
    return copy


def disk(folder: Path) -> dict[str, str]:
    """Every file below folder with a digest of its contents (and every folder)."""
    return {str(path.relative_to(folder)): hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            for path in sorted(folder.rglob("*"))}


def refused(capsys: pytest.CaptureFixture[str], call: object, *args: object, code: int = 2) -> str:
    """Calls call(*args), which must exit with `code` after exactly one line of error (no traceback); returns it."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        call(*args)  # type: ignore[operator]
    err = capsys.readouterr().err
    assert exit_info.value.code == code, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0] == err.strip().splitlines()[-1], err
    return errors[0]


def as_script(script: str, *args: str) -> None:
    """`python <script> <args>` in this process: its __main__ block runs as from the shell (no second import)."""
    argv = sys.argv
    sys.argv = [str(ROOT / script), *args]
    try:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    finally:
        sys.argv = argv


def resume(run_dir: Path, *flags: str) -> Path | None:
    return trainer.main(["--resume", str(run_dir), *QUIET, *flags])


# ---- files in a run folder are data ----------------------------------------------------------------------------------


def test_a_best_checkpoint_that_links_out_of_the_run_is_refused(run: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "elsewhere.ckpt"
    shutil.copy(run / "checkpoints" / "last.ckpt", outside)
    (run / "checkpoints" / "best.ckpt").symlink_to(outside)  # inside by name, outside once resolved
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "best_checkpoint": "checkpoints/best.ckpt"}))
    before = disk(run.parent.parent)
    assert "outside the run folder" in refused(capsys, predict.main, [str(run), "--output", str(tmp_path / "p.csv")])
    assert disk(run.parent.parent) == before and not (tmp_path / "p.csv").exists()


# ---- a resume point is never lost ------------------------------------------------------------------------------------


def test_a_checkpoint_write_cut_short_keeps_the_previous_one_whole(tmp_path: Path) -> None:
    target = tmp_path / "checkpoints" / "last.ckpt"
    io = runs.AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "weights": torch.ones(1000)}, target)
    good = target.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))  # the disk fills up 100 kB into the next one
    try:
        with pytest.raises(OSError, match="File too large"):  # the disk's own error, not torch's zip writer's
            io.save_checkpoint({"global_step": 2, "weights": torch.zeros(100_000)}, target)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert target.read_bytes() == good  # still the previous, complete checkpoint
    assert [path.name for path in target.parent.iterdir()] == ["last.ckpt"]  # nothing half-written left
    assert torch.load(target, weights_only=True)["global_step"] == 1


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_resume_continues_from_the_newest_readable_checkpoint_saying_so_in_one_line(
        run: Path, damage: str, capsys: pytest.CaptureFixture[str]) -> None:
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2] if damage == "truncated" else b"")
    (run / "checkpoints" / ".last.ckpt.partial-99999").write_bytes(b"half")  # a save killed with its process
    capsys.readouterr()
    assert resume(run, "--max_epochs", "3") == run
    out = capsys.readouterr().out
    said = [line for line in out.splitlines() if line.startswith("Continuing from")]
    assert len(said) == 1 and "checkpoints/best-" in said[0] and "last.ckpt is not a readable checkpoint" in said[0]
    assert torch.load(last, weights_only=True)["global_step"] == 3 * 2  # three epochs of two batches in all
    assert not list(run.glob("checkpoints/.*partial*"))


def test_a_checkpoint_of_another_model_is_refused_before_anything_changes(run: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    other = train(tmp_path / "other", "--model", "mlp", "--hidden", "7", "--max_epochs", "1", *SHORT)
    shutil.copy(other / "checkpoints" / "last.ckpt", run / "checkpoints" / "last.ckpt")
    before = disk(run)
    line = refused(capsys, resume, run, "--max_epochs", "3")
    assert "does not fit model" in line and "nothing was changed" in line
    assert disk(run) == before  # the event files were not cut back, no folder or file added
    line = refused(capsys, predict.main, [str(run / "checkpoints" / "last.ckpt"), "--output", str(tmp_path / "p.csv")])
    assert "last.ckpt does not fit" in line and disk(run) == before
    for checkpoint in run.glob("checkpoints/*.ckpt"):  # crafted: plain values where the weights should be
        torch.save({"state_dict": {"body.0.weight": 5, "body.0.bias": [1]}, "global_step": "x"}, checkpoint)
    before = disk(run)
    assert "does not fit model" in refused(capsys, resume, run, "--max_epochs", "3") and disk(run) == before


def test_a_spoilt_monitor_record_is_chosen_afresh_when_resuming(run: Path) -> None:
    info = runs.read_info(run)
    runs.write_info(run, {**info, "monitor": {"metric": 5, "mode": "sideways"}})
    assert resume(run, "--max_epochs", "3") == run
    assert runs.read_info(run)["monitor"] == info["monitor"] == {"metric": "loss/val", "mode": "min"}


# ---- one process per run folder; --version is one folder name --------------------------------------------------------


def test_a_second_resume_of_a_running_run_is_refused_and_a_full_disk_later_leaves_it_resumable(
        run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    last = run / "checkpoints" / "last.ckpt"
    written = last.stat().st_mtime_ns
    first = subprocess.Popen([sys.executable, "trainer.py", "--resume", str(run), "--max_epochs", "100000",
                              "--early_stopping_patience", "none", *QUIET],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None and last.stat().st_mtime_ns == written:
            time.sleep(0.1)  # until it trains (it holds the run's lock from before its first step)
        assert first.poll() is None, "the first resume ended before it could be disturbed"
        line = refused(capsys, resume, run, "--max_epochs", "100000")
        assert "is being trained by another process" in line
        time.sleep(1)  # the first trains on, undisturbed
        # then its disk fills up: no file of its may grow past half a checkpoint (a checkpoint write fails midway)
        limit = last.stat().st_size // 2
        resource.prlimit(first.pid, resource.RLIMIT_FSIZE, (limit, limit))
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert first.returncode == 2 and "Traceback" not in err and len(errors) == 1, err
    assert "File too large" in errors[0] and errors[0] == err.strip().splitlines()[-1]
    assert not list(run.glob("checkpoints/.*partial*"))  # nothing half-written left
    state = torch.load(last, weights_only=True)  # whole: the newest complete one
    assert state["global_step"] > 4  # it trained on after the second was refused
    # and the run goes on from its newest whole checkpoint (last.ckpt, or a best one written after it)
    assert resume(run, "--max_epochs", str(state["epoch"] + 3)) == run
    assert torch.load(last, weights_only=True)["global_step"] > state["global_step"]


@pytest.mark.parametrize("version", ["../../x", "..", ".", "", "a/b"])
def test_version_must_be_one_folder_name(tmp_path: Path, version: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(capsys, trainer.main, ["--save_dir", str(tmp_path / "logs"), "--version", version, *QUIET, *SHORT])
    assert "give one folder name" in line
    assert list(tmp_path.iterdir()) == []


# ---- no validation at all trains -------------------------------------------------------------------------------------


def test_no_validation_batches_train_also_with_folds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = train(tmp_path / "logs", "--max_epochs", "1", *SHORT, "--limit_val_batches", "0")
    info = runs.read_info(run_dir)
    assert (run_dir / info["best_checkpoint"]).is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    series = train(tmp_path / "folds", "--max_epochs", "1", *SHORT, "--limit_val_batches", "0", "--folds", "2")
    assert "2 folds: best loss/val nan" in capsys.readouterr().out  # no fold validated: nothing to compare
    assert sorted((path / "checkpoints" / "last.ckpt").is_file() for path in series.iterdir()) == [True, True]


# ---- sweeps: what cannot succeed is refused up front; a study keeps its setup ----------------------------------------


@pytest.mark.parametrize(("flags", "says"), [
    (["--hidden", "-4:8"], "--hidden -4:8: it counts something"),
    (["--batch_size", "-8,16"], "--batch_size -8,16: it counts something"),
    (["--lr", "1e-3:1e400"], "finite bounds"),
])
def test_a_sweep_refuses_negative_counts_and_infinite_bounds(tmp_path: Path, flags: list[str], says: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(capsys, sweep.main, ["--save_dir", str(tmp_path / "logs"), "--trials", "2", *flags])
    assert says in line and not (tmp_path / "logs").exists()


OTHER_MODEL = "mlp" if trainer.DEFAULT_MODEL != "mlp" else "deep_normal"


@pytest.mark.parametrize(("change", "says"), [(["--model", OTHER_MODEL], "model"), (["--max_epochs", "3"], "fixed")])
def test_a_study_refuses_another_model_or_other_fixed_flags(tmp_path: Path, change: list[str], says: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    first = ["--save_dir", str(tmp_path / "logs"), "--study", "s", "--trials", "2", "--lr", "1e-3:1e-1"]
    sweep.parse([*first, "--max_epochs", "2"])  # the study is made, with its setup, before any trial
    study = optuna_study(tmp_path / "logs" / "s" / "study.db")
    line = refused(capsys, sweep.parse, [*first, "--max_epochs", "2", *change])
    assert f"study s was started with other {says}" in line
    assert optuna_study(tmp_path / "logs" / "s" / "study.db") == study


def optuna_study(database: Path) -> tuple:
    import optuna

    study = optuna.load_study(study_name="s", storage=f"sqlite:///{database}")
    return study.user_attrs, len(study.trials)


# ---- one line for every broken thing ---------------------------------------------------------------------------------

RUN_JSON = st.one_of(
    st.text(max_size=30),  # not JSON at all, or JSON of the wrong kind
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                 max_leaves=6).map(json.dumps),
    st.sampled_from(sorted(runs.REQUIRED)),  # a whole run.json but for this entry
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=RUN_JSON)
def test_a_broken_or_incomplete_run_json_is_one_line_for_predict_and_resume(
        trained: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
        content: str) -> None:
    copy = tmp_path_factory.mktemp("runjson") / "logs" / "s" / "r"
    shutil.copytree(trained, copy)
    if content in runs.REQUIRED:
        info = json.loads((copy / "run.json").read_text())
        del info[content]
        content = json.dumps(info)
    (copy / "run.json").write_text(content)
    before = disk(copy)
    for call, args in ((predict.main, [str(copy)]), (resume, copy)):
        line = refused(capsys, call, args)
        assert str(copy / "run.json") in line and ("cannot be read" in line or "is incomplete" in line), line
    assert disk(copy) == before


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from([*runs.REQUIRED, "best_checkpoint", "data_info", "started"]), value=JSON)
def test_any_value_in_run_json_predicts_or_is_one_line(trained: Path, tmp_path_factory: pytest.TempPathFactory,
                                                        capsys: pytest.CaptureFixture[str], key: str,
                                                        value: object) -> None:
    copy = tmp_path_factory.mktemp("runjson") / "logs" / "s" / "r"
    shutil.copytree(trained, copy)
    (copy / "config.yaml").unlink()  # as a run made before 0.3.0: run.json alone says how it was built
    (copy / "run.json").write_text(json.dumps({**json.loads((copy / "run.json").read_text()), key: value}))
    before = disk(copy)
    output = copy.parent.parent / "p.csv"
    try:
        predict.main([str(copy), "--output", str(output)])
    except SystemExit:
        line = refused(capsys, predict.main, [str(copy), "--output", str(output)])
        assert line.startswith("predict.py: error:") and not output.exists()
    assert disk(copy) == before


def test_a_broken_provenance_json_is_said_and_predicting_goes_on(run: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (run / "provenance.json").write_text('{"git": [')
    predict.main([str(run), "--output", str(tmp_path / "p.csv")])
    assert f"code: not recorded ({run / 'provenance.json'} is missing or unreadable)" in capsys.readouterr().out
    assert (tmp_path / "p.csv").is_file()


@pytest.mark.parametrize("size", [0, 200])
def test_a_truncated_checkpoint_is_one_line_for_predict(run: Path, tmp_path: Path, size: int,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = runs.best_checkpoint(run)
    checkpoint.write_bytes(checkpoint.read_bytes()[:size])
    before = disk(run)
    line = refused(capsys, predict.main, [str(run), "--output", str(tmp_path / "p.csv")])
    assert "is not a readable checkpoint" in line and disk(run) == before


@pytest.mark.parametrize(("script", "flags"), [("trainer.py", [*QUIET, *SHORT]), ("sweep.py", ["--lr", "1e-3:1e-1"])])
def test_logs_that_is_a_file_is_one_line(tmp_path: Path, script: str, flags: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "logs").write_text("notes")
    line = refused(capsys, as_script, script, "--save_dir", str(tmp_path / "logs"), *flags)
    assert "Not a directory" in line and str(tmp_path / "logs") in line
    assert (tmp_path / "logs").read_text() == "notes" and [p.name for p in tmp_path.iterdir()] == ["logs"]


def train_and_meanwhile(save_dir: Path, damage: object) -> subprocess.CompletedProcess[str]:
    """`python trainer.py` (a process of its own: what a user sees, other threads included), with damage(run folder)
    done as soon as the run has written its first checkpoint."""
    argv = [sys.executable, "trainer.py", "--save_dir", str(save_dir), "--max_epochs", "200",
            "--early_stopping_patience", "none", *QUIET, *SHORT]
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if last := next(save_dir.glob("*/*/checkpoints/last.ckpt"), None):
                damage(last.parent.parent)  # type: ignore[operator]
                break
            time.sleep(0.01)
        out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def one_line_from(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0] == done.stderr.strip().splitlines()[-1], done.stderr
    return errors[0]


def test_a_run_folder_deleted_while_training_is_one_line(tmp_path: Path) -> None:
    line = one_line_from(train_and_meanwhile(tmp_path / "logs", lambda run_dir: shutil.rmtree(run_dir)))
    assert line.startswith("trainer.py: error:") and "folder moved away" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_run_folder_made_read_only_while_training_is_one_line(tmp_path: Path) -> None:
    def read_only(run_dir: Path) -> None:
        for folder in (run_dir / "checkpoints", run_dir):
            folder.chmod(0o555)

    try:
        line = one_line_from(train_and_meanwhile(tmp_path / "logs", read_only))
    finally:
        for folder in (tmp_path / "logs").glob("*/*/**"):
            folder.chmod(0o755)
    assert "Permission denied" in line


def test_devices_that_are_not_there_are_one_line(trained: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    output = ["--output", str(tmp_path / "p.csv")]
    assert "no CUDA GPU; use --device cpu" in refused(capsys, predict.main, [str(trained), "--device", "cuda", *output])
    assert "not a torch device" in refused(capsys, predict.main, [str(trained), "--device", "banana", *output])
    for flags in (["--accelerator", "cuda"], ["--accelerator", "gpu"], ["--gpus", "[0]"]):
        line = refused(capsys, trainer.main, ["--save_dir", str(tmp_path / "logs"), *flags, *QUIET, *SHORT])
        assert line.startswith(f"trainer.py: error: {' '.join(flags)}:")
    assert list(tmp_path.iterdir()) == []


def test_fast_dev_run_with_folds_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(capsys, trainer.main, ["--save_dir", str(tmp_path), "--fast_dev_run", "true", "--folds", "2"])
    assert "--folds with --fast_dev_run" in line and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script", ["trainer.py", "predict.py", "sweep.py"])
def test_a_deleted_working_folder_is_one_line(tmp_path: Path, script: str) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    shell = f'cd "{gone}" && rmdir "{gone}" && exec "{sys.executable}" "{ROOT / script}" last'
    done = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("error: the folder you are in was deleted (or replaced); cd into one that exists, "
                                   "run this again")


# ---- predict.py --inputs: any CSV a user may have --------------------------------------------------------------------

CELL = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-99, 99).map(str),
                 st.sampled_from(["", "nan", "inf", "-inf", "x", " 1 ", "1e400", "é"]))
ROW = st.lists(CELL, min_size=1, max_size=3)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, max_size=4), bom=st.booleans(), encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_any_csv_of_inputs_predicts_every_row_or_is_one_line(trained: Path, tmp_path_factory: pytest.TempPathFactory,
                                                             capsys: pytest.CaptureFixture[str], rows: list[list[str]],
                                                             bom: bool, encoding: str) -> None:
    folder = tmp_path_factory.mktemp("inputs")
    text = "x\n" + "".join(",".join(row) + "\n" for row in rows)
    (folder / "in.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    output = folder / "out.csv"
    argv = [str(trained), "--inputs", str(folder / "in.csv"), "--output", str(output)]
    readable = encoding == "utf-8" or "é" not in text
    kept = [row for row in rows if row != [""]]  # an empty line is no row
    if readable and kept and all(len(row) == 1 and _finite(row[0]) for row in kept):
        predict.main(argv)
        lines = output.read_text().splitlines()
        assert len(lines) == 1 + len(kept) and lines[0].startswith("index,x,")
    else:
        line = refused(capsys, predict.main, argv)
        assert str(folder / "in.csv") in line
        assert not output.exists()


def _finite(cell: str) -> bool:
    with contextlib.suppress(ValueError):
        return abs(float(cell)) < float("inf")
    return False
