"""A run folder is data, whoever made it (a colleague, a shared disk, a download): a crafted checkpoint or run.json
never runs code and never makes the project read a file outside the run."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

import predict
import trainer


class RunsCode:
    """Unpickling an instance runs `touch <marker>`: what a crafted checkpoint could do with a full load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def crafted_checkpoint(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "global_step": 1, "payload": RunsCode(marker)}, path)


def one_line_error(capsys: pytest.CaptureFixture[str], exit_info: pytest.ExceptionInfo[SystemExit]) -> str:
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


@pytest.fixture
def shared_run(two_epoch_run: Path, tmp_path: Path) -> Path:
    """A copy of a real run in a save_dir of its own, as a colleague's run folder would arrive."""
    copy = tmp_path / "logs" / two_epoch_run.parent.name / "from-a-colleague"
    shutil.copytree(two_epoch_run, copy)
    return copy


def test_a_crafted_checkpoint_never_runs_code_through_resume_or_predict(shared_run: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "code-ran"
    crafted_checkpoint(shared_run / "checkpoints" / "last.ckpt", marker)
    # --resume skips it, says why in one line, and continues from the newest readable checkpoint
    assert trainer.main(["--resume", str(shared_run), "--max_epochs", "3", "--enable_progress_bar", "false"]) == shared_run
    out = capsys.readouterr().out
    assert "Continuing from checkpoints/best-" in out and "last.ckpt holds more than weights" in out
    assert not marker.exists()
    for checkpoint in shared_run.glob("checkpoints/*.ckpt"):  # nothing readable left
        crafted_checkpoint(checkpoint, marker)
    with pytest.raises(SystemExit) as exit_info:
        trainer.main(["--resume", str(shared_run), "--max_epochs", "4"])
    line = one_line_error(capsys, exit_info)
    assert "holds more than weights" in line and "could run code" in line
    with pytest.raises(SystemExit) as exit_info:
        predict.main([str(shared_run)])
    assert "holds more than weights" in one_line_error(capsys, exit_info)
    with pytest.raises(SystemExit) as exit_info:  # 'last' picks the newest run of logs/: the crafted one
        predict.main(["last", "--save_dir", str(shared_run.parent.parent)])
    assert "holds more than weights" in one_line_error(capsys, exit_info)
    assert not marker.exists()


@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_run_json_cannot_point_predict_at_a_file_outside_the_run(shared_run: Path, tmp_path: Path, where: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "code-ran"
    outside = tmp_path / "elsewhere" / "evil.ckpt"
    crafted_checkpoint(outside, marker)
    info = json.loads((shared_run / "run.json").read_text())
    info["best_checkpoint"] = str(outside) if where == "absolute" else os.path.relpath(outside, shared_run)
    (shared_run / "run.json").write_text(json.dumps(info))
    with pytest.raises(SystemExit) as exit_info:
        predict.main([str(shared_run)])
    assert "outside the run folder" in one_line_error(capsys, exit_info)
    assert not marker.exists()


def test_a_truncated_checkpoint_is_one_line(shared_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for checkpoint in shared_run.glob("checkpoints/*.ckpt"):  # a full disk cut every one of them short
        checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 3])
    with pytest.raises(SystemExit) as exit_info:
        trainer.main(["--resume", str(shared_run), "--max_epochs", "3"])
    assert "is not a readable checkpoint" in one_line_error(capsys, exit_info)


def test_a_broken_run_json_is_one_line(shared_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (shared_run / "run.json").write_text('{"model": "deep_normal", ')
    with pytest.raises(SystemExit) as exit_info:
        predict.main([str(shared_run)])
    assert "run.json cannot be read" in one_line_error(capsys, exit_info)
