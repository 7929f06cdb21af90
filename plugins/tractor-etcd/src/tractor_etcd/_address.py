"""``etcd://HOST:PORT[,HOST:PORT...][/PREFIX][?OPTIONS]``: a registry in etcd.

Several endpoints are members of one etcd cluster. ``PREFIX`` (default
``tractor``) namespaces the keys, so unrelated applications can share one
etcd. Options (all optional):

``ttl``       lease TTL in seconds (default :data:`DEFAULT_TTL`, or
              ``$TRACTOR_ETCD_TTL``)
``cacert``    CA bundle to verify the members' certificates (turns on TLS)
``cert``,     client certificate and its key, for etcd's
``key``       ``--client-cert-auth`` (turn on TLS)
``tls=1``     TLS verified against the system's CAs
``user``      etcd user; the password is read from ``$TRACTOR_ETCD_PASSWORD``
              (never from the address: addresses are logged and passed to
              subactors)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode

from tractor.plugin import Address, StoreAddress, wrap_address

if TYPE_CHECKING:
    import ssl

SCHEME = 'etcd'
DEFAULT_PREFIX = 'tractor'
#: default lease TTL (seconds): how long a SIGKILLed actor's entry outlives it
DEFAULT_TTL = 5
TTL_ENV = 'TRACTOR_ETCD_TTL'
PASSWORD_ENV = 'TRACTOR_ETCD_PASSWORD'
_OPTIONS = ('ttl', 'cacert', 'cert', 'key', 'tls', 'user')
BACKENDS_KEY = 'etcd.backends'


def _bad(text: str, why: str) -> ValueError:
    return ValueError(
        f'bad etcd registry address {text!r}: {why} '
        f'(expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX][?ttl=N&cacert=...])'
    )


def _parse_endpoint(text: str, part: str) -> tuple[str, int]:
    host, sep, port = part.rpartition(':')
    if host.startswith('[') and host.endswith(']'):
        host = host[1:-1]
    if not sep or not host:
        raise _bad(text, f'endpoint {part!r} is not HOST:PORT')
    try:
        num = int(port)
    except ValueError:
        raise _bad(text, f'endpoint {part!r} has a bad port') from None
    if not 0 < num <= 65535:
        raise _bad(text, f'endpoint {part!r} has a port outside 1..65535')
    return host, num


class EtcdAddress(StoreAddress):
    """Where a registry in etcd is: the cluster's endpoints, a key prefix
    and client options. Build one from its text with :meth:`parse` or
    directly; ``str()`` / ``.url`` is the canonical text."""

    proto_key = SCHEME

    def __init__(
        self,
        endpoints: list[tuple[str, int]],
        prefix: str = DEFAULT_PREFIX,
        *,
        ttl: int | None = None,
        cacert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        tls: bool = False,
        user: str | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError('an etcd registry needs at least one HOST:PORT endpoint')
        self.endpoints = [(str(h), int(p)) for h, p in endpoints]
        prefix = prefix.strip('/')
        if not prefix:
            raise ValueError('the etcd key prefix must not be empty')
        self.prefix = prefix
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1):
            raise ValueError(f'the etcd lease TTL is a whole number of seconds >= 1, got {ttl!r}')
        self.ttl = ttl
        if (cert is None) != (key is None):
            raise ValueError('an etcd client certificate needs both cert= and key=')
        self.cacert, self.cert, self.key = cacert, cert, key
        self.tls = bool(tls or cacert or cert)
        self.user = user

    @classmethod
    def parse(cls, text: str) -> EtcdAddress:
        if not isinstance(text, str) or not text.startswith(SCHEME + '://'):
            raise _bad(str(text), 'it must start with etcd://')
        rest = text[len(SCHEME) + 3 :]
        rest, _, query = rest.partition('?')
        hosts, _, prefix = rest.partition('/')
        if not hosts:
            raise _bad(text, 'no HOST:PORT endpoint')
        endpoints = [_parse_endpoint(text, part) for part in hosts.split(',')]
        opts: dict[str, Any] = {}
        for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
            if name not in _OPTIONS:
                raise _bad(text, f'unknown option {name!r} (known: {", ".join(_OPTIONS)})')
            opts[name] = value
        if 'ttl' in opts:
            try:
                opts['ttl'] = int(opts['ttl'])
            except ValueError:
                raise _bad(text, f'ttl must be whole seconds, got {opts["ttl"]!r}') from None
        if 'tls' in opts:
            opts['tls'] = opts['tls'] not in ('', '0', 'false', 'no')
        try:
            return cls(endpoints, prefix or DEFAULT_PREFIX, **opts)
        except ValueError as err:
            raise _bad(text, str(err)) from None

    @property
    def url(self) -> str:
        hosts = ','.join(f'[{h}]:{p}' if ':' in h else f'{h}:{p}' for h, p in self.endpoints)
        opts = {
            name: getattr(self, name)
            for name in ('ttl', 'cacert', 'cert', 'key', 'user')
            if getattr(self, name) is not None
        }
        if self.tls and not (self.cacert or self.cert):
            opts['tls'] = 1
        query = f'?{urlencode(opts, quote_via=quote, safe="/")}' if opts else ''
        return f'{SCHEME}://{hosts}/{self.prefix}{query}'

    def lease_ttl(self) -> int:
        """The TTL to use: the address's, else ``$TRACTOR_ETCD_TTL``, else the default."""
        if self.ttl is not None:
            return self.ttl
        raw = os.environ.get(TTL_ENV, '').strip()
        if not raw:
            return DEFAULT_TTL
        try:
            ttl = int(raw)
            if ttl < 1:
                raise ValueError
        except ValueError:
            raise ValueError(f'{TTL_ENV} must be whole seconds >= 1, got {raw!r}') from None
        return ttl

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        import ssl

        ctx = ssl.create_default_context(cafile=self.cacert)
        if self.cert:
            ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def near(self, proto_key: str) -> Address | None:
        if proto_key != 'tcp':
            return None
        # the TCP transport binds on this host's address routing to the
        # first member (the same address whatever member we end up using,
        # when they share a network)
        host, port = self.endpoints[0]
        try:
            return wrap_address(('tcp', [host, port]))
        except Exception:  # no TCP transport installed
            return None

    def open_backend(self, actor: Any) -> Any:
        from ._backend import EtcdRegistry

        return EtcdRegistry(self)


class EtcdStore:
    """The ``tractor_registry_stores`` entry: parses ``etcd://`` text."""

    scheme = SCHEME

    @staticmethod
    def parse(text: str) -> EtcdAddress:
        return EtcdAddress.parse(text)
