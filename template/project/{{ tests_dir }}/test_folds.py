"""K-fold cross-validation: --folds K trains K runs named by fold in one series, the folds share out train+val
(the test split stays held out), and the mean and std of their best loss/val are printed, recorded and logged."""

import json
import statistics
from collections.abc import Sized
from pathlib import Path

import pytest
from conftest import TINY, scalars, train
from torch.utils.data import Subset

import trainer
from data.base import BaseDataModule
from util import cli, components, sweeps


def test_the_folds_share_out_train_and_val_and_keep_the_test_split() -> None:
    held_out: list[set[int]] = []
    trained: list[set[int]] = []
    test_sets: set[int] = set()
    pooled = 0
    for fold in range(3):
        setup = cli.parse(["--folds", "3", "--fold", str(fold)], trainer.DEFAULTS)
        datamodule, _ = components.load_data(setup)
        assert isinstance(datamodule, BaseDataModule)
        splits = (datamodule.train_set, datamodule.val_set, datamodule.test_set)
        assert isinstance(splits[0], Sized) and isinstance(splits[1], Sized) and isinstance(splits[2], Sized)
        pooled = len(splits[0]) + len(splits[1])
        test_sets.add(len(splits[2]))
        sweeps.select_fold(setup, datamodule)
        assert isinstance(datamodule.train_set, Subset) and isinstance(datamodule.val_set, Subset)
        held_out.append(set(datamodule.val_set.indices))
        trained.append(set(datamodule.train_set.indices))
        assert held_out[-1].isdisjoint(trained[-1]) and len(held_out[-1] | trained[-1]) == pooled
    assert set.union(*held_out) == set(range(pooled)) and sum(map(len, held_out)) == pooled
    assert len(test_sets) == 1  # the test split is the dataset's own, untouched


def test_folds_train_k_runs_and_report_their_mean_and_std(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series = train(tmp_path, *TINY, "--folds", "3")
    run_dirs = sorted(path.parent for path in series.glob("*/run.json"))
    assert series.name.endswith("-3folds") and len(run_dirs) == 3
    assert sorted(run.name.rsplit("_", 1)[1] for run in run_dirs) == ["fold=0", "fold=1", "fold=2"]
    infos = [json.loads((run / "run.json").read_text()) for run in run_dirs]
    bests = [info["best_val_loss"] for info in infos]
    mean, std = statistics.fmean(bests), statistics.stdev(bests)
    for run, info in zip(run_dirs, infos):
        assert info["folds_val_loss"] == pytest.approx({"mean": mean, "std": std})
        assert [value for _, value in scalars(run, sweeps.FOLDS_MEAN)] == pytest.approx([mean])
        assert [value for _, value in scalars(run, sweeps.FOLDS_STD)] == pytest.approx([std])
    assert f"3 folds: best loss/val {mean:.4g} ± {std:.4g}" in capsys.readouterr().out


@pytest.mark.parametrize(("flags", "says"), [(["--folds", "1"], "at least 2"), (["--fold", "0"], "needs --folds"),
                                             (["--folds", "3", "--fold", "3"], "0 to 2")])
def test_bad_fold_settings_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str],
                                               says: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train(tmp_path, *TINY, *flags)
    assert exit_info.value.code == 2 and says in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
