"""What trainer.py, predict.py and sweep.py stand on, one module per question a reader asks (nothing here needs
editing to add a model or a dataset):

    cli.py         where does a flag become a Trainer or model argument? (jsonargparse: flags, --config, help)
    runs.py        where is a run folder named, and how is a run continued? (run.json, checkpoints, requeues)
    training.py    what does trainer.py add to Lightning's training? (callbacks, HPARAMS, tuning, the run's record)
    components.py  how do a dataset and a model meet? (their facts, a foreign class, a checkpoint-safe config)
    registry.py    how does a file in model/ or data/ become --model/--dataset?
    predicting.py  how does a trained run predict? (predict.py and the notebook)
    provenance.py  which code, packages and command produced a run?
    sweeps.py      how do many runs search hyperparameters (sweep.py, Optuna) or cross-validate (--folds)?
"""
