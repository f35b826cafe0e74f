"""Every run tells itself apart: its folder name and its HPARAMS row hold every setting that differs from its
default (Trainer and run flags too), and `tensorboard --logdir logs` shows every run of every series with all
of its hyperparameters (checked through TensorBoard's own HTTP API)."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import TINY, logged_hparams, train

from util import runs as run_folders


def test_runs_that_differ_only_by_max_epochs_have_different_names_and_rows(tmp_path: Path) -> None:
    flags = TINY[2:]  # TINY without its --max_epochs 1
    assert TINY[:2] == ["--max_epochs", "1"]
    one = train(tmp_path, *flags, "--max_epochs", "1")
    two = train(tmp_path, *flags, "--max_epochs", "2")
    assert "max_epochs=1" in one.name and "max_epochs=2" in two.name
    assert (logged_hparams(one)["max_epochs"], logged_hparams(two)["max_epochs"]) == (1, 2)
    # presentation-only flags (the progress bar, the model summary) do not name a run
    assert "progress" not in one.name and "summary" not in one.name


def test_trainer_and_run_flags_and_the_seed_name_the_run_and_show_in_its_row(tmp_path: Path) -> None:
    run_dir = train(tmp_path, *TINY, "--accumulate_grad_batches", "2", "--gradient_clip_val", "0.5", "--swa",
                    "--early_stopping_patience", "3", "--seed", "7")
    for part in ("accum=2", "clip=0.5", "swa=true", "patience=3", "seed=7"):
        assert f"_{part}" in run_dir.name, run_dir.name
    row = logged_hparams(run_dir)
    assert row["accumulate_grad_batches"] == 2 and row["gradient_clip_val"] == pytest.approx(0.5)
    assert row["swa"] == 1  # torch writes a bool as a number
    assert (row["early_stopping_patience"], row["seed"]) == (3, 7)


def test_a_long_name_is_cut_readably_and_stays_unique() -> None:
    many = {f"setting_number_{i}": "x" * 30 for i in range(8)}
    other = {**many, "setting_number_7": "y" * 30}
    first = run_folders.version_name("20261130-120000", run_folders.version_suffix(many))
    second = run_folders.version_name("20261130-120000", run_folders.version_suffix(other))
    assert len(first) <= run_folders.MAX_VERSION_LENGTH and first.startswith("20261130-120000_setti_numbe_0=xxx")
    assert first != second


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(port: int, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/data/plugin/hparams/{path}",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json",
                                                                              "X-Requested-With": "XMLHttpRequest"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_tensorboard_shows_every_run_of_every_series_with_all_its_hyperparameters(tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    runs = [
        train(save_dir, *TINY, "--model", "mlp", "--depth", "1"),
        train(save_dir, *TINY, "--model", "deep_normal", "--gradient_clip_val", "0.5"),
        train(save_dir, *TINY, "--model", "deep_normal", "--seed", "3"),
    ]
    assert len({run.parent for run in runs}) == 2  # two series
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(save_dir), "--host",
                               "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                experiment = _post(port, "experiment", {"experimentName": ""})
                groups = _post(port, "session_groups", {
                    "experimentName": "", "startIndex": 0, "sliceSize": 100,
                    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]})
                if len(groups.get("sessionGroups", [])) == len(runs):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "TensorBoard did not list the runs"
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=10)
    columns = {info["name"] for info in experiment["hparamInfos"]}
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    for run in runs:
        assert set(logged_hparams(run)) <= columns, set(logged_hparams(run)) - columns
    assert {"depth", "dropout", "gradient_clip_val", "seed", "max_epochs"} <= columns
    assert {"hp/val_loss", "hp/test_loss", "loss/val"} <= metrics
    rows = {group["name"]: group for group in groups["sessionGroups"]}
    mlp_row = next(group for group in rows.values() if "mlp" in group["name"])
    assert mlp_row["hparams"]["depth"] == 1
    assert all("hp/val_loss" in {m["name"]["tag"] for m in group["metricValues"]} for group in rows.values())
