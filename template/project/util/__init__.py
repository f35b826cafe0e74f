"""The machinery behind trainer.py, predict.py and sweep.py, one module per idea (nothing here needs editing
to add a model or a dataset):

    cli.py       trainer.py's command line: run flags, two-phase parsing, --resume's rules
    flags.py     a flag for every Lightning Trainer argument, parsed by its type annotation
    hparams.py   a flag for every hyperparameter of a model or dataset class
    helptext.py  --help text from docstrings and signature comments
    fitting.py   data, model, run folder, Trainer, fit and test, with one-line errors
    naming.py    what a run is called, and which process decides (DDP ranks, torchrun, SLURM jobs)
    runs.py      what a run folder holds (run.json, checkpoints) and finding runs again
    resume.py    exact resume: last.ckpt every validation, event files cut back, Ctrl-C and SIGTERM saved
    tuning.py    --scale_batch_size and --lr_find
    hpmetrics.py the HPARAMS tab: each run's row, hp/val_loss as the best loss/val, columns over all series
    search.py    sweep.py's plan and its Optuna study (storage, sampler, pruner), the summary of the best trials
    workers.py   sweep.py's workers: trials as trainer.py processes, dead workers' trials failed
    trial.py     a run that is a sweep trial: reports loss/val, is pruned, tells its worker the result
    space.py     a sweep's search space from trainer.py's flags (ranges, choices, fixed values)
    folds.py     --folds K: K-fold cross-validation runs and the mean and std of their best loss/val
    progress.py  the progress bar
    registry.py  discovery behind model/ and data/ (any LightningModule / LightningDataModule)
    foreign.py   plain Lightning classes used as they are: optional data wiring, their own HPARAMS
    monitor.py   which validation metric picks the best checkpoint and stops early (what the model logs)
    predicting.py  predict.py for any model: restoring it, its outputs as CSV columns
"""
