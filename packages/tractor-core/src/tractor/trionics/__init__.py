"""Helpers for structured concurrency beyond what trio ships."""

from ._broadcast import BroadcastReceiver as BroadcastReceiver
from ._broadcast import Lagged as Lagged
from ._broadcast import broadcast_receiver as broadcast_receiver
from ._cache import maybe_open_context as maybe_open_context
from ._eg import collapse_eg as collapse_eg
from ._helpers import is_multi_cancelled as is_multi_cancelled
from ._helpers import maybe_open_nursery as maybe_open_nursery
from ._helpers import maybe_raise_from_masking_exc as maybe_raise_from_masking_exc
from ._mngrs import gather_contexts as gather_contexts

__all__ = [
    'BroadcastReceiver',
    'Lagged',
    'broadcast_receiver',
    'collapse_eg',
    'gather_contexts',
    'is_multi_cancelled',
    'maybe_open_context',
    'maybe_open_nursery',
    'maybe_raise_from_masking_exc',
]
