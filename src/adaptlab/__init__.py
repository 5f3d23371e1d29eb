"""adaptlab: fine-tune or prompt? Build both on your data, measure them, serve the winner.

    import adaptlab
    result = adaptlab.compare("examples/banking-cards/experiment.yaml")

The names in `__all__` are the stable Python API (adaptlab/api.py); they load on first
use, so `import adaptlab` stays light (no torch).
"""

__version__ = "0.1.0"
__all__ = [
    "compare",
    "sweep",
    "audit_data",
    "review",
    "judge",
    "Comparison",
    "__version__",
]  # audit_data: `adaptlab.audit` is the audit package


def __getattr__(name: str):
    if name in ("compare", "sweep", "audit_data", "review", "judge", "Comparison"):
        from adaptlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'adaptlab' has no attribute {name!r}")
