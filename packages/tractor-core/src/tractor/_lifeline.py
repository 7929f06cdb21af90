"""What a supervised daemon actor serves for its supervisor: one call that
lasts as long as the actor does.

The supervisor keeps a ``lifeline()`` call open in every ``start_actor``
child. How that call ends tells it how the actor ended: a cancel request
from any actor comes back as ``ContextCancelled`` whose ``canceller`` is the
requester; an actor that shuts down on its own (``sys.exit()`` in a task, a
crash) answers with itself as the canceller, and one that dies outright
(a signal, ``os._exit()``) just drops the connection. This module holds
nothing else, so enabling it exposes nothing else.
"""

from __future__ import annotations

import trio


async def lifeline() -> None:
    """Never returns: it is cancelled when this actor shuts down."""
    await trio.sleep_forever()
