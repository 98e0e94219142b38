"""Hyperparameter search on Optuna: each trial is an ordinary cifarlab run, pruned on its per-epoch validation.

A tune file names a recipe, fixed overrides, a search space, the validation metric, the trial count,
the sampler and the pruner (`tune_file`); the study lives in one folder (`study`): its Optuna storage
(study.db by default), one run folder per trial under trials/, and the report (`report`). Optuna is an
optional extra (`pip install 'cifarlab[tune]'`), imported only inside these modules.
"""
