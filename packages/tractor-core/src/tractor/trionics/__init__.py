"""Helpers for structured concurrency beyond what trio ships."""
from ._eg import collapse_eg as collapse_eg
from ._mngrs import gather_contexts as gather_contexts

__all__ = ['collapse_eg', 'gather_contexts']
