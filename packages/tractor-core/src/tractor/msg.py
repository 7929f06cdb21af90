"""Messages: payload type specs and the ``NamespacePath`` text form.

Every value that crosses actors is encoded with msgspec (builtins,
dataclasses, ``msgspec.Struct``, ...). A context may declare the type of its
payloads with ``@tractor.context(pld_spec=...)`` (any type msgspec can
decode to: ``int``, ``int | None``, ``list[MyStruct]``, a tagged union of
structs...). Then both sides check every payload of that context (the
``started()`` value, stream messages both ways, the return value): the
sender refuses a value that does not fit the spec with
:class:`~tractor.MsgTypeError` before anything is sent, and the receiver
decodes with the spec (a peer that skipped the check still cannot hand it
a wrong type).

A value msgspec cannot encode at all also raises ``MsgTypeError`` (a
``TypeError``) where it is sent; if nothing catches it, the peer sees it as
a ``RemoteActorError`` whose ``boxed_type`` is ``TypeError``: the error is
about the value, whichever spec was in force.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from ._context import context
from ._exceptions import MsgTypeError

__all__ = ['MsgTypeError', 'NamespacePath', 'context']

_DOTTED = r'[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*'
_NSP = re.compile(rf'(?P<mod>{_DOTTED}):(?P<name>{_DOTTED}(?:\.<locals>\.{_DOTTED})*)')


class NamespacePath(str):
    """The text form ``'pkg.mod:qual.name'`` of an importable object.

    It is a ``str`` (compare, hash and print it as one); ``from_ref(obj)``
    builds it from a function or class, ``load_ref()`` imports the module
    and returns the object, ``to_tuple()`` splits it into
    ``(module, name)``, the two arguments of ``Portal.run_from_ns()``.
    msgspec encodes exact ``str`` only: send ``str(path)`` and rebuild with
    ``NamespacePath(text)`` on the other side.
    """

    __slots__ = ()

    def __new__(cls, text: str) -> NamespacePath:
        if not isinstance(text, str) or not _NSP.fullmatch(text):
            raise ValueError(
                f"a NamespacePath is 'pkg.module:name' (a dotted module path, a colon, "
                f'a dotted attribute path), got {text!r}'
            )
        return super().__new__(cls, text)

    @classmethod
    def from_ref(cls, ref: Any) -> NamespacePath:
        """The path of ``ref``, a function, class or method, from its
        ``__module__`` and ``__qualname__``."""
        mod = getattr(ref, '__module__', None)
        qualname = getattr(ref, '__qualname__', None)
        if not isinstance(mod, str) or not isinstance(qualname, str):
            raise TypeError(
                f'NamespacePath.from_ref() needs a function or class (with __module__ '
                f'and __qualname__), got {ref!r}'
            )
        return cls(f'{mod}:{qualname}')

    def to_tuple(self) -> tuple[str, str]:
        """``(module, name)``: ``('pkg.mod', 'fn')`` for ``'pkg.mod:fn'``."""
        mod, _, name = self.partition(':')
        return mod, name

    def load_ref(self) -> Any:
        """Import the module and return the object the path names; an
        unknown attribute is an ``AttributeError`` naming the path, an object
        local to a function (``<locals>``) cannot be loaded (``ValueError``)."""
        mod, name = self.to_tuple()
        if '<locals>' in name:
            raise ValueError(f'{self!s} names an object local to a function: it cannot be loaded')
        obj: Any = importlib.import_module(mod)
        for part in name.split('.'):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise AttributeError(f'{self!s}: module {mod!r} has no {name!r}') from None
        return obj

    def __repr__(self) -> str:
        return f'NamespacePath({str(self)!r})'
