"""What trainer.py adds to Lightning's training: callbacks beside Lightning's own (ModelCheckpoint, EarlyStopping,
LearningRateMonitor, SWA), the tuning before it (Lightning's Tuner) and the run's life around fit and test.

- MetricChoice: the validation metric that picks the best checkpoint and stops early (--monitor NAME, else loss/val,
  else val_loss: what the model really logs), decided at the first validation, said in one line, recorded;
- HParamsTab: the run's row in TensorBoard's HPARAMS tab, for any LightningModule, and its hp/ metrics;
- Interruption: Ctrl-C, SIGTERM and SIGHUP save the state where training stopped; `stopped` says how to resume;
- `start` claims the run's folder (new, resumed or requeued), `record` writes run.json, config.yaml and provenance,
  `finish` records the outcome.

What Lightning does not do, and this module does: pick the monitored metric from what was logged, write an HPARAMS row
whose columns TensorBoard takes from all runs, save at the batch where a signal arrived and say how to go on, and read
lr_find's curve per decade of lr (Lightning 2.6's suggestion favours the tiniest lrs, Lightning issue #21141).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.tuner import Tuner
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.model_helpers import is_overridden
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter

from data.base import DataInfo
from model.base import BaseModel, ConfigurationError
from util import cli, runs, sweeps

PREFERRED = ("loss/val", "val_loss", "val/loss")  # the project's, Lightning's docs', Hydra template's
BEST, LAST, TEST = "hp/val_loss", "hp/val_loss_last", "hp/test_loss"
C = TypeVar("C", bound=Callback)
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}  # 128 + the signal's number


def last_checkpoint(run_dir: Path) -> ModelCheckpoint:
    """Keeps <run>/checkpoints/last.ckpt at the newest validation (or epoch end): "the best step" is the newest.
    (Lightning's save_last writes it only when a best checkpoint is written too.)"""
    return ModelCheckpoint(dirpath=run_dir.resolve() / runs.CHECKPOINTS, filename=Path(runs.LAST).stem, monitor="step",
                           mode="max", save_top_k=1, enable_version_counter=False)


class MetricChoice(Callback):
    """Points the best-checkpoint and early-stopping callbacks at the metric the model logs. Comes first in trainer.py's
    list (Lightning calls checkpoint callbacks last)."""

    def __init__(self, requested: str | None, mode: str, run_dir: Path | None) -> None:
        self.requested, self.mode, self.run_dir, self.decided = requested, mode, run_dir, False
        self.metric: str | None = None
        self.say = say  # for callbacks that only hold this one (sweeps' pruning)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        recorded = runs.read_info(self.run_dir).get("monitor") if self.run_dir and (
            self.run_dir / runs.RUN_FILE).is_file() else None
        if stage == "fit" and not self.decided and isinstance(recorded, dict) and recorded.get("mode") in ("min", "max"):
            self.mode, metric = recorded["mode"], recorded.get("metric")  # a resumed run watches the same
            self._apply(trainer, metric if isinstance(metric, str) else None, resumed=True)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logged = validation_metrics(trainer)
        if self.decided or (trainer.sanity_checking and not logged):  # epoch-end loggers log nothing in the check
            return
        if self.requested and self.requested not in logged:
            raise ConfigurationError(f"--monitor {self.requested}: the model logs no such validation metric; it "
                                     f"logs {', '.join(sorted(logged)) or 'none'}")
        self._apply(trainer, self.requested or next((name for name in PREFERRED if name in logged), None), logged)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        batches = trainer.num_val_batches
        total = sum(float(b) for b in batches) if isinstance(batches, list) else float(batches)
        if not self.decided and not (is_overridden("validation_step", pl_module) and total):
            self._apply(trainer, None, {})  # no validation will run

    def _apply(self, trainer: pl.Trainer, metric: str | None, logged: dict[str, Any] | None = None,
               resumed: bool = False) -> None:
        self.metric, self.decided = metric, True
        stoppers = trainer.early_stopping_callbacks
        for checkpoint in trainer.checkpoint_callbacks:
            if isinstance(checkpoint, ModelCheckpoint) and checkpoint.monitor != "step":  # last.ckpt's watches steps
                _watch(checkpoint, metric, self.mode)
        for stopper in stoppers:
            _stop_with(stopper, metric, self.mode)
        if resumed:
            say(trainer, f"Monitoring {metric} ({self.mode}), as when the run started" if metric else
                "No validation metric, as when the run started: keeping the last checkpoint")
        elif metric is not None:
            say(trainer, f"Monitoring {metric} ({self.mode}): it picks the best checkpoint"
                + (" and stops early" if stoppers else ""))
        else:
            found = f"it logs {', '.join(sorted(logged or {}))}" if logged else "it logs no validation metric"
            say(trainer, f"No loss/val, val_loss or val/loss to monitor ({found}): keeping the last checkpoint as the best"
                f"{', no early stopping' if stoppers else ''}; choose one with --monitor NAME")
        if not resumed and trainer.is_global_zero and self.run_dir and (self.run_dir / runs.RUN_FILE).is_file():
            runs.update_info(self.run_dir, monitor={"metric": metric, "mode": self.mode})


# Library lines that say nothing about this run, kept off a default run's screen (--verbose shows them; the run's
# lightning.log keeps them all), each with the reason.
QUIET = {
    "The `srun` command is available": "Lightning's hint for SLURM, twice per run; scripts/slurm.sbatch runs srun",
    "isinstance(treespec, LeafSpec)` is deprecated": "torch deprecates an API that Lightning 2.6 calls: not ours",
    "does not have many workers": "the project's datasets are in memory: worker processes would only cost",
    "💡 Tip:": "adverts for Lightning's cloud services",
    "GPU available:": "what the devices are: --accelerator and --devices say what is used",
    "TPU available:": "as above",
    "Total FLOPs: 0": "a model summary line that is 0 without an example_input_array"}


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "\n" in message and "Total FLOPs: 0" in message:  # the summary table's last line only
            record.msg, record.args = message.replace("Total FLOPs: 0", "").rstrip(), ()
            return True
        return not any(noise in message for noise in QUIET)


# A model of the project's kind logs once per epoch: Lightning's advice on per-step logging is noise to it alone.
PER_EPOCH_LOGGING = "is smaller than the logging interval"


def keep_library_noise_off_screen(setup: cli.Setup) -> None:
    """Known harmless lines of Lightning and torch off the screen (once per process; --verbose leaves all on)."""
    from model import MODELS

    if issubclass(MODELS[setup.model_name], BaseModel):
        QUIET.setdefault(PER_EPOCH_LOGGING, "the project's models log once per epoch")
    else:
        QUIET.pop(PER_EPOCH_LOGGING, None)
    if setup.args.verbose or getattr(warnings.showwarning, "quiet", False):
        return
    hook = threading.excepthook  # TensorBoard's writer raises its error again in the run's thread: one line there
    threading.excepthook = lambda args: None if type(args.thread).__module__.startswith("tensorboard") else hook(args)
    for name in ("lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_Quiet())
    shown = warnings.showwarning

    def showwarning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                    line: str | None = None) -> None:
        if any(noise in str(message) for noise in QUIET):
            logging.getLogger("lightning.pytorch.quiet").info("%s:%s: %s", filename, lineno, message)
        else:
            shown(message, category, filename, lineno, file, line)

    showwarning.quiet = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


def log_to(run_dir: Path | None) -> None:
    """Every line of Lightning's (the quiet ones too) into <run>/lightning.log."""
    if run_dir is not None and runs.launched_rank_is_zero():
        handler = logging.FileHandler(run_dir / "lightning.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        for name in ("lightning.pytorch", "lightning.fabric"):
            logger = logging.getLogger(name)
            logger.handlers = [h for h in logger.handlers if not isinstance(h, logging.FileHandler)] + [handler]


def callback(trainer: pl.Trainer, kind: type[C]) -> C | None:
    """The Trainer's first callback of a kind (Trainer.callbacks: an attribute Lightning sets as it starts)."""
    return next((cb for cb in getattr(trainer, "callbacks", []) if isinstance(cb, kind)), None)


def say(trainer: pl.Trainer, line: str) -> None:
    """A line of ours on a line of its own, not inside the progress bar's (rank 0 only)."""
    if not trainer.is_global_zero:
        return
    bar = trainer.progress_bar_callback
    if isinstance(bar, TQDMProgressBar) and bar.is_enabled:
        bar.print(line)
    else:
        print(line, flush=True)


def validation_metrics(trainer: pl.Trainer) -> dict[str, Any]:
    """What the model logged in validation (scalars of trainer.callback_metrics; train ones and ours excepted)."""
    return {name: value for name, value in trainer.callback_metrics.items()
            if not (torch.is_tensor(value) and value.numel() != 1) and "train" not in name
            and not name.startswith(("hp/", "lr-"))}  # lr-*: LearningRateMonitor's


def _watch(checkpoint: ModelCheckpoint, metric: str | None, mode: str) -> None:
    if metric is None:  # save_top_k=1 without a monitor keeps the latest: "best" is the last
        checkpoint.monitor, checkpoint.filename = None, "latest-epoch={epoch}-step={step}"
        return
    if metric != checkpoint.monitor:  # "/" would make a sub-folder of the file name; the value is the metric's own
        checkpoint.filename = f"best-epoch={{epoch}}-step={{step}}-{metric.replace('/', '_')}={{{metric}:.4f}}"
    checkpoint.monitor, checkpoint.mode = metric, mode
    checkpoint.kth_value = torch.tensor(math.inf if mode == "min" else -math.inf)


def _stop_with(stopper: EarlyStopping, metric: str | None, mode: str) -> None:
    if metric is None:  # nothing to watch: never stops, never complains
        stopper.strict, stopper.verbose, stopper.monitor = False, False, "no validation metric"
        return
    stopper.monitor, stopper.mode = metric, mode
    stopper.best_score = torch.tensor(math.inf if mode == "min" else -math.inf)


class HParamsTab(Callback):
    """The run's row of the HPARAMS tab: its hyperparameters and settings (the session's start), the best and last
    values of the monitored metric (hp/val_loss: the tested checkpoint's), the test's, and how the run ended (success,
    failure, or running: stopped, to be continued). No `_hparams_/experiment` summary (Lightning's log_hyperparams
    writes one per run, and the tab took its columns from one run only). TensorBoard keeps the first start and end a
    run wrote: a sweep trial (`at_end`) writes both when it ends; a resumed run again, after trim_events."""

    def __init__(self, hparams: dict[str, Any], at_end: bool = False) -> None:
        self.hparams, self.at_end, self.ended = hparams, at_end, False
        self.best: float | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.at_end:
            self._write(trainer, _session_start(self.hparams))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        choice = callback(trainer, MetricChoice)
        metric, mode = (choice.metric, choice.mode) if choice and choice.metric else (PREFERRED[0], "min")
        logged = trainer.callback_metrics.get(metric)
        if trainer.sanity_checking or logged is None:
            return
        value = float(logged)
        if math.isfinite(value) and (self.best is None or (value < self.best if mode == "min" else value > self.best)):
            self.best = value
        self._log(trainer, {LAST: value} if self.best is None else {BEST: self.best, LAST: value})

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        choice = callback(trainer, MetricChoice)
        wanted = (choice.metric if choice and choice.metric else PREFERRED[0]).replace("val", "test")
        logged = {name: value for name, value in trainer.callback_metrics.items() if "test" in name}
        name = wanted if wanted in logged else next(iter(sorted(n for n in logged if "loss" in n)), None)
        if name is not None:
            self._log(trainer, {TEST: float(logged[name])})
        # a regression's RMSE, MAE and R² in the target's units (model/base.py), beside it in the HPARAMS tab
        self._log(trainer, {f"hp/test_{metric}": float(logged[f"{metric}/test"]) for metric in ("rmse", "mae", "r2")
                            if f"{metric}/test" in logged})

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        stopped = isinstance(exception, (KeyboardInterrupt, SIGTERMException))  # to be continued
        self.end(trainer, "interrupted" if stopped else "failed")

    def end(self, trainer: pl.Trainer, state: str) -> None:
        """The session's end, once: complete and pruned runs succeeded, a stopped one is still running (it will be
        continued), a failed one failed."""
        if self.ended:
            return
        self.ended = True
        if self.at_end:
            self._write(trainer, _session_start(sweeps.trial_fields(state, self.hparams)))
        status = {"failed": api_pb2.STATUS_FAILURE, "interrupted": api_pb2.STATUS_RUNNING}.get(state, api_pb2.STATUS_SUCCESS)
        self._write(trainer, _summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(
            session_end_info=plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time()))))

    @staticmethod
    def _write(trainer: pl.Trainer, summary: Any) -> None:
        """Into an event file of its own in the run's folder (TensorBoard reads them all; the logger's own writer is
        closed once fit ends)."""
        tensorboard = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tensorboard is not None and trainer.is_global_zero:
            with SummaryWriter(tensorboard.log_dir, filename_suffix=".hparams") as writer:
                writer.file_writer.add_summary(summary)

    @staticmethod
    def _log(trainer: pl.Trainer, metrics: dict[str, float]) -> None:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        best = state_dict.get("best")
        self.best = None if best is None or not math.isfinite(float(best)) else float(best)


def _summary(tag: str, data: Any) -> summary_pb2.Summary:
    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR)
    return summary


def _session_start(hparams: dict[str, Any]) -> summary_pb2.Summary:
    """A session's start: its hyperparameters as TensorBoard's hparams plugin reads them (numbers, text, booleans)."""
    info = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for name, value in hparams.items():
        value = _tensorboard_value(value)
        if isinstance(value, bool):
            info.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            info.hparams[name].number_value = value
        else:
            info.hparams[name].string_value = str(value)
    return _summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=info))


def _tensorboard_value(value: Any) -> Any:
    """What a session can hold: numbers, text and booleans (lists, None, objects as text)."""
    value = runs.jsonable(value)
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict) and "class_path" in value:
        return str(value["class_path"]).rsplit(".", 1)[-1]
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


class ObjectsAsConfig(Callback):
    """A hyperparameter that flags built as an object (a network, an optimizer partial) is checkpointed as its config
    (class_path, init_args), which a weights-only load reads and the run's config.yaml rebuilds."""

    def __init__(self, configs: dict[str, Any]) -> None:
        self.configs = configs

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        for key in ("hyper_parameters", "datamodule_hyper_parameters"):
            saved: dict[str, Any] = checkpoint.get(key) or {}
            for name in set(self.configs) & set(saved):
                if not isinstance(saved[name], (dict, str, int, float, bool, type(None))):
                    saved[name] = self.configs[name]


class Interruption(Callback):
    """On Ctrl-C, SIGTERM or SIGHUP: save the state where training stopped into last.ckpt, remember the signal."""

    def __init__(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir
        self.signal: str | None = None
        self.saved: Path | None = None
        self._hangup = signal.signal(signal.SIGHUP, self._hung_up) if hasattr(signal, "SIGHUP") else None

    def _hung_up(self, signum: int, frame: Any) -> None:  # a closed terminal: the Ctrl-C path, with its own code
        self.signal = "SIGHUP"
        raise KeyboardInterrupt

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            self.signal = self.signal or "SIGINT"
        elif isinstance(exception, SIGTERMException):
            self.signal = "SIGTERM"
        else:
            return
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the checkpoint short
        if self.run_dir is not None and trainer.state.fn == "fit" and not trainer.sanity_checking \
                and trainer.global_step > 0:
            self.saved = self.run_dir.resolve() / runs.CHECKPOINTS / runs.LAST
            trainer.save_checkpoint(self.saved, weights_only=False)  # all states, written beside then renamed

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signal or "", 1)


def early_stop_line(trainer: pl.Trainer) -> str | None:
    """One line saying that (and why) early stopping ended the run, or None when it did not."""
    stopper = trainer.early_stopping_callback
    if stopper is None or stopper.stopped_epoch == 0:
        return None
    best = stopper.best_score
    shown = f"{float(best):.4g}" if torch.is_tensor(best) and torch.isfinite(best) else str(best)
    return (f"Early stopping at epoch {stopper.stopped_epoch}: {stopper.monitor} has not improved on its best {shown} "
            f"for {stopper.patience} validations (--early_stopping_patience {stopper.patience}).")


class ProgressBar(TQDMProgressBar):
    """Redrawn every 10 batches (metrics change once per epoch; on small models the redraw is a measurable share of a
    step), without Lightning's last 4 characters of a text version ("v_num=sine"): the run folder is printed whole."""

    def __init__(self) -> None:
        super().__init__(refresh_rate=10)

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


# ---- tuning before training ----------------------------------------------------------------------------------


@dataclass
class Tuned:
    batch_size: int | None = None  # chosen by --scale_batch_size
    lr: float | None = None  # chosen by --lr_find
    finder: Any = None  # Lightning's lr sweep (its results and plot)


def tune(trainer_kwargs: dict[str, Any], model: pl.LightningModule, datamodule: pl.LightningDataModule, *,
         scale_batch_size: bool, lr_find: bool) -> Tuned:
    """Batch size first (the lr that works best depends on it), then learning rate, on a Trainer of the run's own
    arguments that keeps nothing; both change the model and datamodule in place and return what they chose."""
    unbounded = {name: value for name, value in trainer_kwargs.items() if not name.startswith(("max_", "min_"))}
    with tempfile.TemporaryDirectory() as scratch:  # the tuners' temporary checkpoints go here
        trainer = pl.Trainer(**{**unbounded, "max_epochs": -1, "logger": False, "enable_checkpointing": False,
                                "enable_model_summary": False, "default_root_dir": scratch})
        if trainer.world_size > 1:
            raise ConfigurationError("--lr_find/--scale_batch_size run on one device: tune first, then train on several with "
                              "the values found (--lr, --batch_size)")
        tuner, tuned = Tuner(trainer), Tuned()
        if scale_batch_size:
            if not hasattr(datamodule, "batch_size"):
                raise ConfigurationError(f"--scale_batch_size: {type(datamodule).__name__} has no batch_size attribute for "
                                  "the tuner to change")
            # Doubling from the configured size; Lightning stops past the train split's size (2048 for 1,200 rows).
            tuner.scale_batch_size(model, datamodule=datamodule, mode="power", init_val=datamodule.batch_size)
            tuned.batch_size = datamodule.batch_size = min(datamodule.batch_size,
                                                           len(datamodule.train_dataloader().dataset))
            print(f"scale_batch_size: batch size set to {tuned.batch_size}", flush=True)
        if lr_find:
            if "lr" not in model.hparams:
                raise ConfigurationError(f"--lr_find: {type(model).__name__} has no lr hyperparameter for it to set")
            tuned.finder = tuner.lr_find(model, datamodule=datamodule, update_attr=False)
            tuned.lr = suggested_lr(tuned.finder) if tuned.finder is not None else None
            if tuned.lr is not None:
                model.hparams["lr"] = tuned.lr  # configure_optimizers reads it; HPARAMS and config.yaml show it
                print(f"lr_find: learning rate set to {tuned.lr:.4g}", flush=True)
    return tuned


def suggested_lr(finder: Any, skip_begin: int = 10, skip_end: int = 1) -> float | None:
    """The lr where the loss falls fastest per decade of lr (where the plot shows the steepest descent)."""
    lrs = torch.tensor(finder.results["lr"][skip_begin:-skip_end], dtype=torch.float64)
    losses = torch.tensor(finder.results["loss"][skip_begin:-skip_end], dtype=torch.float64)
    lrs, losses = lrs[torch.isfinite(losses)], losses[torch.isfinite(losses)]
    if len(losses) < 3:
        return None
    return float(lrs[torch.gradient(losses, spacing=[lrs.log10()])[0].argmin()])


def save_lr_plot(finder: Any, lr: float, path: Path) -> None:
    """The sweep's loss curve with the chosen lr marked."""
    import matplotlib  # only here: training without --lr_find never needs it

    matplotlib.use("Agg")  # no display needed
    figure = finder.plot(suggest=False)
    axes = figure.axes[0]
    axes.axvline(lr, color="red", linestyle="--", label=f"chosen lr = {lr:.3g}")
    axes.legend()
    figure.savefig(path)


# ---- the run around fit and test --------------------------------------------------------------------------------


def start(setup: cli.Setup, trainer_kwargs: dict[str, Any], info: DataInfo | None,
          model: pl.LightningModule) -> runs.Run:
    """The run's folder: the one --resume (or a requeue) continues, the --version given, or a new one named by what
    differs from the defaults. A continued run's checkpoint must fit the model before its event files are cut back."""
    args = setup.args
    if trainer_kwargs.get("fast_dev_run") or trainer_kwargs.get("barebones"):  # seed 002: such runs keep nothing
        if trainer_kwargs.get("barebones"):
            print("barebones: no logger, checkpoints, callbacks or run folder (what Lightning's barebones mode forbids)")
        return runs.Run(None, args.name, "")
    if (resume := setup.resume) is not None:
        saved = resume.state.get("state_dict")  # crafted or not: only its tensors' shapes are looked at
        wrong = [key for key, value in model.state_dict().items()
                 if getattr(saved.get(key) if isinstance(saved, dict) else None, "shape", None) != value.shape]
        if wrong:
            setup.error(f"--resume: {resume.checkpoint} does not fit model {setup.model_name!r} ({len(wrong)} of its "
                        f"weights differ, e.g. {wrong[0]}); nothing was changed")
        run = runs.Run(resume.dir, resume.dir.parent.name, resume.dir.name, resume.how, resume.checkpoint)
        try:
            run.hold()
        except runs.RunError as problem:
            setup.error(str(problem))
        if runs.launched_rank_is_zero():  # what the stopped process logged after its checkpoint is logged again
            runs.trim_events(resume.dir, runs.logged_step(resume.state))
            csv_file = resume.dir / "csv" / "metrics.csv"  # CSVLogger would delete it: keep the earlier part beside
            if csv_file.is_file():
                csv_file.rename(csv_file.with_name(f"metrics-{time.strftime('%Y%m%d-%H%M%S')}.csv"))
        return run
    if args.version is not None:
        if args.version in ("", ".", "..") or "/" in args.version or os.sep in args.version:
            setup.error(f"--version {args.version!r}: give one folder name (letters, digits, '-', '_', '.')")
        run_dir, created = setup.series_dir / args.version, not (setup.series_dir / args.version).exists()
        if runs.launched_rank_is_zero():  # re-executed DDP ranks find rank 0's folder: that is expected
            if (run_dir / runs.RUN_FILE).is_file():
                setup.error(f"--version {args.version}: {run_dir} already holds a run; continue it with --resume "
                            f"{run_dir}, or choose another --version")
            run_dir.mkdir(parents=True, exist_ok=True)
    else:
        changed = {**setup.changed_hparams(), **setup.run_settings()}  # what tells this run apart
        run_dir, run_id = runs.create_run_dir(setup.series_dir, runs.version_suffix(changed), setup.argv)
        os.environ[runs.RUN_ID_ENV] = run_id  # DDP ranks re-executed by Lightning inherit it: the same folder
        created = True
    run = runs.Run(run_dir, args.name, run_dir.name, created=created)
    try:
        run.hold()
    except runs.RunError as problem:
        setup.error(str(problem))
    return run


def record(run: runs.Run, setup: cli.Setup, trainer: pl.Trainer, tuned: Tuned, info: DataInfo | None) -> None:
    """run.json (what was trained), config.yaml (every flag, to train it again), provenance.json, the lr_find plot."""
    if run.dir is None or not trainer.is_global_zero or run.state != "new":
        return
    runs.write_info(run.dir, {
        "model": setup.model_name, "dataset": setup.data_name, "model_hparams": setup.model_hparams,
        "data_hparams": setup.data_hparams, "seed": setup.args.seed, "argv": setup.argv, "best_checkpoint": None,
        "data_info": None if info is None else {"task": info.task, "input_shape": list(info.input_shape),
                                                "num_outputs": info.num_outputs},
        "started": time.time(), "name": run.name, "version": run.version, "trial": sweeps.trial_record(),
        "slurm_step": os.environ.get("SLURM_STEP_ID")})  # the ranks of one srun share it
    (run.dir / runs.CONFIG_FILE).write_text(cli.config_to_keep(setup))
    sweeps.started(run.dir)  # a sweep trial's retry continues this folder
    runs.record_provenance(run.dir, setup.argv)
    if tuned.finder is not None and tuned.lr is not None:
        save_lr_plot(tuned.finder, tuned.lr, run.dir / "lr_find.png")


def stopped(run: runs.Run, trainer: pl.Trainer) -> None:
    """After Ctrl-C, SIGTERM or SIGHUP: say where the run is and how to continue it, exit 130, 143 or 129. Returns
    (for the caller to re-raise) when fit ended for another reason."""
    interruption = callback(trainer, Interruption)
    if interruption is None or interruption.signal is None:
        return
    if run.dir is not None and runs.launched_rank_is_zero():
        if not runs.checkpoints_of(run.dir) and run.state == "new":
            run.remove_if_new()
            print(f"\n{interruption.signal}: stopped before the first checkpoint; nothing to resume, so {run.dir} was "
                  "removed", file=sys.stderr)
        else:
            saved = "its state saved" if interruption.saved else "nothing saved after its last checkpoint"
            script = os.path.relpath(runs.PROJECT_ROOT / "trainer.py")
            print(f"\n{interruption.signal}: stopped, {saved} in {run.dir}\nResume with: python {script} --resume "
                  f"{run.dir}", file=sys.stderr)
    sys.exit(interruption.exit_code)


def best_for_testing(run: runs.Run, trainer: pl.Trainer, swa: bool) -> tuple[bool, str | None]:
    """(whether to test, the checkpoint to test): the best one; with --swa the averaged weights, saved first."""
    if trainer.interrupted or trainer.limit_test_batches == 0:
        return False, None
    if swa and run.dir is not None:  # SWA's averaged weights exist only in memory at the end of fit
        path = run.dir.resolve() / runs.CHECKPOINTS / "swa.ckpt"
        trainer.save_checkpoint(path, weights_only=False)
        return True, str(path)
    checkpoint = trainer.checkpoint_callback
    return True, (checkpoint.best_model_path if isinstance(checkpoint, ModelCheckpoint) else "") or None


def finish(run: runs.Run, trainer: pl.Trainer, best: str | None, fold: int | None) -> None:
    """Record the run's outcome: its tested checkpoint and best monitored value in run.json, the end of its HPARAMS
    session, and for a sweep trial its result."""
    if not trainer.is_global_zero:
        return
    score = getattr(trainer.checkpoint_callback, "best_model_score", None)
    value = float(score) if score is not None else math.nan
    pruned = sweeps.was_pruned(trainer)
    tab = callback(trainer, HParamsTab)
    if tab is not None:
        tab.end(trainer, "pruned" if pruned else "complete")
    if run.dir is not None:
        changes: dict[str, Any] = {"best_val_loss": value, "pruned": pruned}
        if best:
            changes["best_checkpoint"] = os.path.relpath(best, run.dir.resolve())
        runs.update_info(run.dir, **changes)
    if fold is None:  # a fold of --folds leaves that to cross_validate, which reports the folds' mean
        sweeps.report(value, pruned)

