"""The machinery behind trainer.py and predict.py, one module per idea (nothing here needs editing to add a
model or a dataset):

    cli.py       trainer.py's command line: run flags, two-phase parsing, --resume's rules
    flags.py     a flag for every Lightning Trainer argument, parsed by its type annotation
    hparams.py   a flag for every hyperparameter of a model or dataset class
    helptext.py  --help text from docstrings and signature comments
    fitting.py   data, model, run folder, Trainer, fit and test, with one-line errors
    naming.py    what a run is called, and which process decides (DDP ranks, torchrun, SLURM jobs)
    runs.py      what a run folder holds (run.json, checkpoints) and finding runs again
    resume.py    exact resume: last.ckpt every validation, event files cut back, Ctrl-C and SIGTERM saved
    tuning.py    --scale_batch_size and --lr_find
    progress.py  the progress bar
    registry.py  discovery behind model/ and data/ (any LightningModule / LightningDataModule)
    foreign.py   plain Lightning classes used as they are: optional data wiring, their own HPARAMS
    monitor.py   which validation metric picks the best checkpoint and stops early (what the model logs)
    predicting.py  predict.py for any model: restoring it, its outputs as CSV columns
"""
