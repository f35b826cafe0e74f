"""What trainer.py, predict.py and sweep.py stand on, one module per question a reader asks (nothing here needs
editing to add a model or a dataset):

    cli.py         where does a flag become a Trainer or model argument? (jsonargparse: flags, --config, help)
    runs.py        where is a run folder named, how is a run continued, which code produced it? (run.json, checkpoints)
    training.py    what does trainer.py add to Lightning's training? (callbacks, HPARAMS, tuning, the run's record)
    components.py  how do a dataset and a model meet? (their facts, a foreign class, a checkpoint-safe config)
    registry.py    how does a file in model/ or data/ become --model/--dataset?
    sweeps.py      how does a trial of sweep.py run (Optuna), and how do --folds cross-validate?
"""

import os

if not os.stat(".").st_nlink:  # started in a folder that was deleted (or replaced): torch cannot even load there
    raise SystemExit("error: the folder you are in was deleted (or replaced); cd into one that exists, run this again")
