"""cdrexp: a fast synthetic CDR generator and a declarative experiment runner around it."""
__version__ = "0.1.0"


def generate(cfg, on_progress=None, executor=None):
    """Generate the records of ``cfg`` (a ``GeneratorConfig``); see ``cdrexp.generation``."""
    from .generation import generate as _generate
    return _generate(cfg, on_progress, executor)
