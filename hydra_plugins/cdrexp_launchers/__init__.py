"""cdrexp's Hydra launchers (``hydra/launcher=slurm``); see ``slurm.py``."""
