"""Developer tools under the names users of the established project know.

``pause``, ``post_mortem``, ``pause_from_sync`` and
``maybe_open_crash_handler`` are :mod:`tractor.debug`'s own (aliases, not
copies); ``dump_task_tree`` formats every trio task's stack, which an actor
started with ``enable_stack_on_sig=True`` writes to stderr on ``SIGUSR1``.
"""

from .._stack import dump_task_tree as dump_task_tree
from ..debug import maybe_open_crash_handler as maybe_open_crash_handler
from ..debug import pause as pause
from ..debug import pause_from_sync as pause_from_sync
from ..debug import post_mortem as post_mortem

__all__ = ['dump_task_tree', 'maybe_open_crash_handler', 'pause', 'pause_from_sync', 'post_mortem']
