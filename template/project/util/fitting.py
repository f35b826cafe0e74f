"""The steps of trainer.py's story that need care but no editing: data and model from the command line, the run
folder, the Trainer (with one-line errors), fit (resumed, interrupted, refused) and the test of the best checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from data import DATASETS
from data.base import BaseDataModule, DataInfo
from model import MODELS
from model.base import BaseModel, ConfigurationError
from util import foreign, hparams, naming, provenance, resume, runs, tuning
from util.cli import Setup

TRAINER_ERRORS = (MisconfigurationException, ValueError, TypeError, ImportError)  # what Trainer() raises on a bad flag

# The project's models log once per epoch (model/base.py), so Lightning's advice to lower log_every_n_steps
# for datasets with few batches is noise to them; build_model silences it for those only. A model that logs
# per step needs it: it says why its training metrics never reach TensorBoard.
FEW_BATCHES_WARNING = "The number of training batches .* is smaller than the logging interval"


def load_data(setup: Setup) -> tuple[pl.LightningDataModule, DataInfo | None]:
    """The datamodule and its facts (None when neither it declares them nor the model needs them: util/foreign.py);
    a missing file or column is a one-line error, not a traceback."""
    try:
        datamodule = DATASETS[setup.data_name](**setup.data_hparams)
        info = foreign.declared_info(datamodule)
        needed = info is None and foreign.needs_info(MODELS[setup.model_name])
        if naming.launched_rank_is_zero() or needed:  # other ranks may start before rank 0 has prepared the data
            # Read the data now rather than inside fit; datasets set up once, so Lightning's call is free.
            datamodule.prepare_data()
            datamodule.setup("fit")
        if needed:
            info = foreign.info_from_batch(datamodule, setup.data_name)
    except foreign.DataError as error:
        setup.error(str(error))
    except (ValueError, OSError) as error:
        setup.error(f"dataset {setup.data_name!r}: {error}")
    return datamodule, info


def build_model(setup: Setup, info: DataInfo | None) -> pl.LightningModule:
    """The model, wired to the dataset's facts it takes; an incompatible pair is refused before anything is
    written. Any LightningModule works (util/foreign.py); a BaseModel also checks the pair."""
    cls = MODELS[setup.model_name]
    if issubclass(cls, BaseModel):
        why = cls.incompatibility(info)
        if why:
            setup.error(f"model {setup.model_name!r} cannot train on dataset {setup.data_name!r}: {why}")
        warnings.filterwarnings("ignore", message=FEW_BATCHES_WARNING)
    try:
        model = foreign.build(cls, info, setup.model_hparams)
    except (TypeError, ValueError) as error:  # e.g. a required argument without a flag type
        setup.error(f"model {setup.model_name!r}: {error}")
    return model


def writes_nothing(trainer_kwargs: dict[str, Any]) -> bool:
    """fast_dev_run (seed 002) and barebones (no logging, no checkpoints) runs get no run folder."""
    return bool(trainer_kwargs.get("fast_dev_run")) or bool(trainer_kwargs.get("barebones"))


def build_trainer(setup: Setup, run_dir: Path | None, kwargs: dict[str, Any]) -> pl.Trainer:
    """The Trainer; a setting it rejects (no GPU for --accelerator gpu, --devices banana ...) is a one-line error
    naming the flag, and the run folder just created for it is removed again (nothing was written to it)."""
    try:
        return pl.Trainer(**kwargs)
    except TRAINER_ERRORS as error:
        remove_new_run_dir(setup, run_dir)
        setup.error(f"{_culprit(setup, kwargs)}{' '.join(str(error).split())}")


def _culprit(setup: Setup, kwargs: dict[str, Any]) -> str:
    """'--devices banana: ' for the first flag the Trainer rejects on its own, else 'Trainer: '."""
    alone = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
             "enable_model_summary": False}
    for name in setup.trainer_flags:
        if hasattr(setup.args, name):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pl.Trainer(**{**alone, name: getattr(setup.args, name)})
            except TRAINER_ERRORS:
                return f"--{name} {_as_typed(setup.argv, name, getattr(setup.args, name))}: "
    return "Trainer: "


def _as_typed(argv: list[str], name: str, parsed: Any) -> str:
    """The value of --name as the user typed it (the last one given), else as parsed."""
    typed = [argv[i + 1] for i, token in enumerate(argv[:-1]) if token == f"--{name}"]
    typed += [token.split("=", 1)[1] for token in argv if token.startswith(f"--{name}=")]
    return typed[-1] if typed else str(parsed)


def tune(setup: Setup, model: BaseModel, datamodule: BaseDataModule, trainer_kwargs: dict[str, Any]) -> Any:
    """--scale_batch_size and --lr_find (util/tuning.py) on a throwaway Trainer; the values found replace the
    flags' in the hyperparameters. Returns the lr finder (for its plot) or None. A resumed run keeps its own."""
    args = setup.args
    if setup.resume_dir is not None or not (args.lr_find or args.scale_batch_size):
        return None
    with tempfile.TemporaryDirectory() as scratch:  # the tuners' temporary checkpoints go here
        # The tuners bound their own number of steps; the run's epoch bounds would cut them short.
        unbounded = {name: value for name, value in trainer_kwargs.items() if not name.startswith(("max_", "min_"))}
        tuning_trainer = build_trainer(setup, None, {**unbounded, "max_epochs": -1, "logger": False,
                                                     "enable_checkpointing": False, "enable_model_summary": False,
                                                     "default_root_dir": scratch})
        try:
            tuned = tuning.tune(tuning_trainer, model, datamodule, scale_batch_size=args.scale_batch_size,
                                lr_find=args.lr_find)
        except tuning.TuningError as error:
            setup.error(str(error))
    if tuned.batch_size is not None:
        setup.data_hparams["batch_size"] = tuned.batch_size
    if tuned.lr is not None:
        setup.model_hparams["lr"] = tuned.lr
    return tuned.finder


def prepare_run_dir(setup: Setup, trainer_kwargs: dict[str, Any]) -> Path | None:
    """The run's folder: the resumed one, the --version given, or a new unique one (util/naming.py)."""
    args = setup.args
    if writes_nothing(trainer_kwargs):
        if trainer_kwargs.get("barebones"):
            print("barebones: no logger, checkpoints, callbacks or run folder (what Lightning's barebones mode forbids)")
        return None
    if setup.resume_dir is not None:
        return setup.resume_dir
    if args.version:
        run_dir = setup.series_dir / args.version
        if naming.launched_rank_is_zero():  # re-executed DDP ranks find rank 0's folder: that is expected
            if (run_dir / runs.RUN_FILE).is_file():
                setup.error(f"--version {args.version}: {run_dir} already holds a run; continue it with "
                            f"--resume {run_dir}, or choose another --version")
            run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir
    changed = {  # what tells this run apart: hyperparameters, then Trainer and run flags, the seed
        **hparams.changed_from_defaults(setup.model_hparams, setup.model_flags),
        **hparams.changed_from_defaults(setup.data_hparams, setup.data_flags),
        **hparams.run_settings(setup),
    }
    run_dir, run_id = naming.create_run_dir(setup.series_dir, naming.version_suffix(changed), argv=setup.argv)
    os.environ[naming.RUN_ID_ENV] = run_id  # DDP ranks re-executed by Lightning inherit it: same folder
    return run_dir


def record_run(setup: Setup, trainer: pl.Trainer, run_dir: Path | None, finder: Any) -> None:
    """run.json (what was trained: for --resume, predict.py and the notebook), provenance.json (what code, packages
    and command produced it: util/provenance.py) and the lr_find plot."""
    if run_dir is None or not trainer.is_global_zero or setup.resume_dir is not None:
        return
    runs.write_run_info(run_dir, {
        "model": setup.model_name, "dataset": setup.data_name,
        "model_hparams": setup.model_hparams, "data_hparams": setup.data_hparams,
        "seed": setup.args.seed, "argv": setup.argv, "best_checkpoint": None,
        "started": time.time(), "name": setup.args.name, "version": run_dir.name,
    })
    provenance.record(run_dir, setup.argv)
    if finder is not None:
        tuning.save_lr_plot(finder, setup.model_hparams["lr"], run_dir / "lr_find.png")


def fit(setup: Setup, trainer: pl.Trainer, model: BaseModel, datamodule: BaseDataModule,
        run_dir: Path | None) -> None:
    """trainer.fit, continuing a resumed run exactly (util/resume.py); a setting found wrong at fit start is a
    one-line error that leaves no run folder; Ctrl-C and SIGTERM end with the command that resumes."""
    resume_from = runs.last_checkpoint(setup.resume_dir) if setup.resume_dir is not None else None
    if resume_from is not None:
        # Continuing in the run's own folder is the point: the checkpoints there are expected.
        warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
    if run_dir is not None and trainer.is_global_zero:
        # What the stopped process logged after its last checkpoint is trained (and logged) again.
        resume.trim_events(run_dir, resume.logged_step(resume_from) if resume_from is not None else 0)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
    except ConfigurationError as error:
        remove_new_run_dir(setup, run_dir)
        setup.error(str(error))
    except SystemExit:  # Lightning ends a Ctrl-C with sys.exit(1); SIGTERM raises SIGTERMException
        stopped_by_signal(setup, trainer, run_dir)
        raise
    if trainer.is_global_zero and (line := resume.early_stop_line(trainer)):
        print(line)


def test_best(setup: Setup, trainer: pl.Trainer, model: BaseModel, datamodule: BaseDataModule,
              run_dir: Path | None, trainer_kwargs: dict[str, Any]) -> None:
    """Test the best checkpoint (with --swa: the averaged weights) and record it in run.json."""
    if trainer.interrupted or trainer_kwargs.get("limit_test_batches", 1) == 0:
        return
    if (why := foreign.untestable(model, datamodule)) is not None:
        if trainer.is_global_zero:
            print(why)
        return
    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_path if isinstance(checkpoint, ModelCheckpoint) else ""
    swa = setup.args.swa
    if swa and run_dir is not None:
        # SWA's averaged weights exist only in memory at the end of fit: save them and test those.
        best = str(run_dir.resolve() / runs.CHECKPOINTS / "swa.ckpt")
        trainer.save_checkpoint(best)
    try:
        trainer.test(model, datamodule=datamodule, ckpt_path=(best or None) if not swa else None)
    except SystemExit:
        if _interruption(trainer).signal is None:
            raise
        print(f"\n{_interruption(trainer).signal} while testing: training had finished; test it again with "
              f"python {_script()} --resume {run_dir}", file=sys.stderr)
        sys.exit(_interruption(trainer).exit_code)
    if run_dir is not None and best and trainer.is_global_zero:
        runs.update_run_info(run_dir, best_checkpoint=os.path.relpath(best, run_dir.resolve()))


def stopped_by_signal(setup: Setup, trainer: pl.Trainer, run_dir: Path | None) -> None:
    """After Ctrl-C or SIGTERM: say where the run is and how to continue it, exit 130 or 143. Returns (for the
    caller to re-raise) when fit ended for another reason."""
    interruption = _interruption(trainer)
    if interruption.signal is None:
        return
    if run_dir is not None and naming.launched_rank_is_zero():
        if runs.newest_checkpoint(run_dir) is None and setup.resume_dir is None:
            remove_new_run_dir(setup, run_dir)
            print(f"\n{interruption.signal}: stopped before the first checkpoint; nothing to resume, so "
                  f"{run_dir} was removed", file=sys.stderr)
        else:
            saved = "its state saved" if interruption.saved else "nothing saved after its last checkpoint"
            print(f"\n{interruption.signal}: stopped, {saved} in {run_dir}\n"
                  f"Resume with: python {_script()} --resume {run_dir}", file=sys.stderr)
    sys.exit(interruption.exit_code)


def remove_new_run_dir(setup: Setup, run_dir: Path | None) -> None:
    """A run refused before training leaves nothing behind (a resumed run's folder is never removed)."""
    if run_dir is not None and setup.resume_dir is None and naming.launched_rank_is_zero():
        shutil.rmtree(run_dir, ignore_errors=True)
        for folder in (run_dir.parent, run_dir.parent.parent):  # the series and logs/, when this run made them
            with contextlib.suppress(OSError):
                folder.rmdir()  # only ever removes an empty folder


def _interruption(trainer: pl.Trainer) -> resume.Interruption:
    found = [callback for callback in trainer.callbacks if isinstance(callback, resume.Interruption)]
    return found[0] if found else resume.Interruption(None)


def _script() -> str:
    """trainer.py as the user can type it from where they are."""
    return os.path.relpath(runs.PROJECT_ROOT / "trainer.py")
