"""The fork server wing: subactors forked from a warm template process
(``start_method='forkserver'``).

A plugin of the runtime's hooks like any other (entry point
``spawn-forkserver``, module :mod:`.plugin`); core never imports it. By
concern:

- :mod:`.protocol`: the wire format of requests and replies, fd passing;
- :mod:`.server`: the epoll loop, the spare, reaping;
- :mod:`.stopping`: the owner's end, SIGTERM/SIGHUP, the orphan grace;
- :mod:`.child`: a spare becoming the subactor a request asks for, and the
  imports the server preloads for it;
- :mod:`.process`: ``ForkedProcess``, the requester's handle on a child;
- :mod:`.owner`: starting a tree's server and stopping it with its owner;
- :mod:`.plugin`: the hooks (availability, the server path handed to
  children in ``SpawnSpec.ext``, the owner's stop), light enough for every
  boot; it imports the rest on the first spawn;
- :mod:`.backend`: a spawn: one request to the tree's server;
- ``__main__``: ``python -m tractor._forkserver``, the server's command.

Nothing is imported here (one constant is defined): ``python -m tractor._forkserver`` imports this
package before it runs ``__main__``, and the spawner's side must not load
the server's modules.
"""

#: where an actor keeps its ``owner.TreeForkServer`` (``actor.extensions``),
#: and the key of the server's path in a ``SpawnSpec.ext``: shared by
#: :mod:`.plugin` and :mod:`.owner`, which must not import each other
EXTENSION = 'forkserver'
