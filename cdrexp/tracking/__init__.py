"""MLflow store, measurements, system info, sweep summary; ``names`` is the contract with
``compare``. Runs left RUNNING by a process that is gone: ``owner_tags`` on every run
opened, ``reconcile_orphans`` before a command uses the store."""
from ._orphans import owner_gone, owner_tags, reconcile_orphans, say_orphans

__all__ = ["owner_gone", "owner_tags", "reconcile_orphans", "say_orphans"]
