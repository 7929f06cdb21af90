"""Optional pieces a feature needs, checked where the feature is asked for,
so a lean install fails with the name of what to install."""

from __future__ import annotations


def require(module: str, install: str, feature: str) -> None:
    """``ModuleNotFoundError`` naming ``install`` when ``module`` is missing."""
    from importlib.util import find_spec  # (not at `import tractor`: it costs)

    if find_spec(module) is None:
        raise ModuleNotFoundError(
            f'{feature} needs {module!r}, which is not installed: '
            f'`pip install {install!r}` (the full `pip install tractor` has it)',
            name=module,
        )


def require_debug() -> None:
    require('greenback', 'tractor-core[debug]', 'debug_mode')
