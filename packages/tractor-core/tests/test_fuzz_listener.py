"""Property-based fuzzing (hypothesis) of a live actor's listener.

The target is a separate root actor (``scripts/fuzz_target.py``). The
fuzzer speaks to it over plain blocking sockets:

- *authenticated* (with the real per-user cookie, so the input gets past
  the preamble and reaches the message decoder): random bytes, truncated
  frames, length prefixes up to 2**32-1, deeply nested msgpack, valid
  messages of the wrong type or in the wrong order, RPC requests naming
  modules that are not enabled, ``..``-style and dunder function names;
- *unauthenticated*: garbage and near-miss preambles followed by valid
  requests, none of which may ever run.

The same runs against the TLS transport (``tractor-tls``; certificates
made with ``trustme``): the fuzzer then speaks through a TLS session, so
the hostile bytes reach the preamble and the decoder as over TCP.

Every example must end with its connection closed by the actor or with a
typed error reply (messages for calls that do not exist, which can arrive
late on a healthy connection, are dropped: the connection then still
answers a ping). After every example a well-behaved peer, on a connection
held throughout and on a fresh one, still gets answers; and the target's
resident memory grows by less than a generous bound over the run.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tractor import _auth, _msg, _secret, _session

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).parent / 'scripts' / 'fuzz_target.py'
#: bound on any one socket operation of the fuzzer (a hang is a failure)
IO_TIMEOUT = 15.0
BOOT_TIMEOUT = 60.0
#: resident memory the target may gain over a whole run
RSS_BOUND = 50 * 1024 * 1024
MAIN = '__main__'

FUZZ_SETTINGS = dict(
    deadline=None,
    derandomize=True,  # the same examples on every CI run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- the target --------------------------------------------------------------


class Target:
    def __init__(self, proc: subprocess.Popen, proto: str, info: dict) -> None:
        self.proc = proc
        self.proto = proto
        self.pid = info['pid']
        self.addr = tuple(info['addrs'][0])

    def rss(self) -> int:
        with open(f'/proc/{self.pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
        raise AssertionError('no VmRSS')


@pytest.fixture(params=['tcp', 'uds', 'tls'])
def tpt_proto(request) -> str:
    """The built-in transports, and TLS (when ``tractor-tls`` is installed)."""
    if request.param == 'tls':
        pytest.importorskip('tractor_tls')
    return request.param


@pytest.fixture
def reg_addr(tpt_proto, reg_addr, tmp_path, monkeypatch):
    """The suite's registry address; for TLS its wire form, with a CA and a
    loopback certificate in ``TRACTOR_TLS_*`` (the target inherits them)."""
    if tpt_proto != 'tls':
        return reg_addr
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert('127.0.0.1', 'localhost')
    paths = {
        var: tmp_path / name
        for var, name in (
            ('TRACTOR_TLS_CA', 'ca.pem'),
            ('TRACTOR_TLS_CERT', 'cert.pem'),
            ('TRACTOR_TLS_KEY', 'key.pem'),
        )
    }
    ca.cert_pem.write_to_path(str(paths['TRACTOR_TLS_CA']))
    leaf.cert_chain_pems[0].write_to_path(str(paths['TRACTOR_TLS_CERT']))
    leaf.private_key_pem.write_to_path(str(paths['TRACTOR_TLS_KEY']))
    for var, path in paths.items():
        monkeypatch.setenv(var, str(path))
    with socket.socket() as s:  # (the suite's reg_addr is a UDS one for non-tcp)
        s.bind(('127.0.0.1', 0))
        return ('tls', ['127.0.0.1', s.getsockname()[1]])


@pytest.fixture
def target(tpt_proto, reg_addr):
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), tpt_proto, json.dumps(reg_addr)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], BOOT_TIMEOUT)
        assert ready, 'the fuzz target did not boot in time'
        line = proc.stdout.readline()
        assert line, f'the fuzz target exited with {proc.wait()}'
        yield Target(proc, tpt_proto, json.loads(line))
        assert proc.poll() is None, f'the fuzz target died with {proc.returncode}'
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)  # our own child
            proc.wait()
        proc.stdout.close()


# -- a blocking client -----------------------------------------------------


def dial(t: Target) -> socket.socket:
    if t.proto == 'tls':
        # a well-configured TLS client (the suite's certificate): what is
        # fuzzed is what the TLS session carries
        ctx = ssl.create_default_context(cafile=os.environ['TRACTOR_TLS_CA'])
        ctx.load_cert_chain(os.environ['TRACTOR_TLS_CERT'], os.environ['TRACTOR_TLS_KEY'])
        raw = socket.create_connection(t.addr, timeout=IO_TIMEOUT)
        sock = ctx.wrap_socket(raw, server_hostname=t.addr[0])
    elif t.proto == 'tcp':
        sock = socket.create_connection(t.addr, timeout=IO_TIMEOUT)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(IO_TIMEOUT)
        sock.connect(os.path.join(*t.addr))
    return sock


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b''
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, f'closed after {len(buf)} of {n} bytes'
        buf += chunk
    return buf


def authenticate(sock: socket.socket, secret: bytes, t: Target) -> _session.Session:
    """The dialer's side of tractor's preamble (see tractor._auth): the
    session whose tags the target checks on every batch we send."""
    wire = ('tcp' if t.proto == 'tcp' else 'uds', list(t.addr))
    binding = _auth.dial_binding(SimpleNamespace(socket=sock), wire)
    nonce = os.urandom(_auth.NONCE_SIZE)
    sock.sendall(_auth.hello_frame(nonce))
    theirs = recv_exact(sock, _auth.HELLO_SIZE)
    assert theirs[:4] == _auth.MAGIC
    proof, session, expected = _auth.dialer_step(secret, nonce, theirs, binding)
    sock.sendall(proof)
    verdict = recv_exact(sock, _auth.VERDICT_SIZE)
    assert verdict == expected, 'the target refused our (real) secret'
    return session


class Reader:
    """The actor's messages on one authenticated connection, decoded (it
    must never send garbage), as whole batches arrive."""

    def __init__(self, session: _session.Session) -> None:
        self.session = session
        self.buf = b''

    def feed(self, chunk: bytes) -> list:
        self.buf += chunk
        bodies, self.buf = self.session.open_batches(self.buf)
        return [_msg.decode(b) for b in bodies]


def frame(msg) -> bytes:
    body = msgspec.msgpack.encode(msg)
    return len(body).to_bytes(4, 'big') + body


def send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
        pass  # the actor hung up before reading it all: allowed


def half_close(sock: socket.socket) -> None:
    """Our EOF, still reading. (``SSLSocket.shutdown`` would drop the TLS
    layer and read ciphertext: shut the socket under it instead.) A
    connection the actor already dropped (ENOTCONN after its reset) is as
    closed as it gets: the read that follows sees it."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_WR)
    except OSError as err:
        if err.errno not in (errno.ENOTCONN, errno.EPIPE, errno.ECONNRESET):
            raise


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything until the actor closes (a reset counts as closed);
    a timeout here means the actor kept a finished connection open."""
    data = b''
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


class Peer:
    """A well-behaved peer: authenticated, said Hello, makes calls."""

    def __init__(self, t: Target, secret: bytes) -> None:
        self.sock = dial(t)
        self.session = authenticate(self.sock, secret, t)
        aid = _msg.Aid(name='fuzzer', uuid=os.urandom(8).hex(), pid=os.getpid())
        self.sock.sendall(self.session.seal_frames([frame(_msg.Hello(aid=aid))]))
        self.reader = Reader(self.session)
        self.pending: list = []
        assert isinstance(self.next(), _msg.Hello)
        self.cid = 0

    def next(self):
        while not self.pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.pending.extend(self.reader.feed(chunk))
        return self.pending.pop(0)

    def call(self, ns: str, func: str, **kwargs):
        self.cid += 2
        self.sock.sendall(
            self.session.seal_frames(
                [frame(_msg.Start(cid=self.cid, ns=ns, func=func, kwargs=kwargs))]
            )
        )
        while True:
            msg = self.next()
            assert msg is not None, 'the actor hung up on a well-behaved peer'
            if getattr(msg, 'cid', None) == self.cid:
                return msg

    def result(self, ns: str, func: str, **kwargs):
        msg = self.call(ns, func, **kwargs)
        assert isinstance(msg, _msg.Return), msg
        return msgspec.msgpack.decode(msg.pld)

    def close(self) -> None:
        self.sock.close()


def check_serving(t: Target, secret: bytes, held: Peer) -> None:
    assert held.result(MAIN, 'ping') == 'pong'
    fresh = Peer(t, secret)
    try:
        assert fresh.result(MAIN, 'echo', value=[1, 'two']) == [1, 'two']
    finally:
        fresh.close()


# -- strategies --------------------------------------------------------------

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=16)
    | st.binary(max_size=16),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
raws = values.map(lambda v: msgspec.Raw(msgspec.msgpack.encode(v)))
cids = st.integers(0, 2**64 - 1)
uids = st.tuples(st.text(max_size=6), st.text(max_size=6))
wire_addrs = st.lists(
    st.tuples(st.sampled_from(['tcp', 'uds', 'carrier-pigeon']), st.lists(values, max_size=3)),
    max_size=3,
)
hellos = st.builds(
    _msg.Hello,
    aid=st.builds(
        _msg.Aid,
        name=st.text(max_size=8),
        uuid=st.text(max_size=8),
        pid=st.integers(-(2**31), 2**31),
    ),
    addrs=wire_addrs,
)

#: modules the target does not enable, path tricks, and its one module
NAMESPACES = [
    'os',
    'sys',
    'subprocess',
    'builtins',
    'importlib',
    'pickle',
    'tractor',
    'tractor._runtime',
    'tractor_core_testfns',
    '',
    '.',
    '..',
    '../..',
    '../__main__',
    '__main__.os',
    '__builtins__',
    MAIN,
    '__mp_main__',
    'self',
]
#: dunders, dotted and ``..`` paths, attribute walks, the real functions
FUNCS = [
    'ping',
    'echo',
    '__init__',
    '__class__',
    '__dict__',
    '__globals__',
    '__import__',
    '__builtins__',
    '__loader__',
    '__spec__',
    '..',
    '../ping',
    './ping',
    'ping/..',
    'os.system',
    'system',
    'getattr',
    'exec',
    'eval',
    'ping.__globals__',
    'echo.__code__',
    'MARKS',
    'json',
    'trio',
    'tractor',
    'sys',
    'main',
    '',
    'registrar_info',
    'find_actor',
    'find_actors',
    'get_registry',
]
#: runtime methods a fuzzer must not call: they are authorized actions
#: (shut the target down, edit its registry), not hostile input
_OFF_LIMITS = {
    ('self', 'cancel'),
    ('self', 'register_actor'),
    ('self', 'unregister_actor'),
    ('self', 'delete_addr'),
    ('self', 'wait_for_actor'),
}
#: what the target really serves (a request for these may succeed)
_SAFE = {(MAIN, 'ping'), (MAIN, 'echo'), (MAIN, 'mark'), (MAIN, 'marks')}

starts = st.builds(
    _msg.Start,
    cid=cids,
    ns=st.sampled_from(NAMESPACES) | st.text(max_size=24),
    func=st.sampled_from(FUNCS) | st.text(max_size=24),
    kwargs=st.dictionaries(st.text(max_size=8), values, max_size=3),
    kind=st.sampled_from(['fn', 'ctx']) | st.text(max_size=4),
    window=st.integers(-(2**63), 2**63 - 1),
).filter(lambda m: (m.ns, m.func) not in _OFF_LIMITS)

any_msg = st.one_of(
    hellos,
    starts,
    st.builds(
        _msg.SpawnSpec,
        enable_modules=st.lists(st.text(max_size=8), max_size=3),
        module_paths=st.dictionaries(st.text(max_size=6), st.text(max_size=12), max_size=2),
        sys_path=st.lists(st.text(max_size=12), max_size=2),
        reg_addrs=wire_addrs,
        bind_addrs=wire_addrs,
        enable_transports=st.lists(st.text(max_size=5), max_size=2),
    ),
    st.builds(_msg.Ready, accept_addrs=wire_addrs),
    st.builds(_msg.Started, cid=cids, pld=raws),
    st.builds(_msg.Yield, cid=cids, pld=raws),
    st.builds(_msg.Return, cid=cids, pld=raws),
    st.builds(_msg.Stop, cid=cids),
    st.builds(_msg.Credit, cid=cids, n=st.integers(-(2**63), 2**63 - 1)),
    st.builds(_msg.Cancel, cid=cids),
    st.builds(
        _msg.Error,
        cid=cids,
        type_str=st.sampled_from(
            ['builtins:SystemExit', 'os:system', 'tractor._exceptions:ContextCancelled']
        )
        | st.text(max_size=20),
        message=st.text(max_size=20),
        tb_str=st.text(max_size=20),
        src_uid=uids,
        relay_uid=st.none() | uids,
        canceller=st.none() | uids,
    ),
)


@st.composite
def nested(draw) -> bytes:
    depth = draw(st.integers(64, 200_000))
    opener = draw(st.sampled_from([b'\x91', b'\x81\xa1k', b'\xdd\x00\x00\x00\x01']))
    return opener * depth + b'\xc0'


@st.composite
def truncated(draw) -> bytes:
    data = frame(draw(any_msg))
    return data[: draw(st.integers(0, len(data) - 1))]


@st.composite
def length_prefix(draw) -> bytes:
    size = draw(
        st.integers(0, 2**32 - 1) | st.sampled_from([2**32 - 1, 2**31, 64 * 2**20 + 1, 64 * 2**20])
    )
    return size.to_bytes(4, 'big') + draw(st.binary(max_size=64))


#: byte-level attacks on an authenticated connection: ('bytes', after_hello,
#: (sealed, data)): sealed, ``data`` is the body of a frame with a valid tag
#: (it reaches the decoder); unsealed, it goes to the framing as it is
byte_cases = st.tuples(
    st.just('bytes'),
    st.booleans(),
    st.tuples(
        st.booleans(),
        st.one_of(
            st.binary(max_size=2048),
            truncated(),
            length_prefix(),
            nested().map(lambda body: len(body).to_bytes(4, 'big') + body),
            nested(),
        ),
    ),
)
#: well-framed messages in any order, then a ping: ('order', after_hello, msgs)
order_cases = st.tuples(st.just('order'), st.booleans(), st.lists(any_msg, min_size=1, max_size=6))
#: RPC requests: ('rpc', True, starts) with distinct call ids
rpc_cases = st.tuples(
    st.just('rpc'),
    st.just(True),
    st.lists(starts, min_size=1, max_size=5, unique_by=lambda m: m.cid),
)


def run_authenticated_case(t: Target, secret: bytes, case) -> None:
    kind, after_hello, payload = case
    sock = dial(t)
    try:
        session = authenticate(sock, secret, t)
        reader = Reader(session)
        hello = []
        if after_hello:
            aid = _msg.Aid(name='fuzzer', uuid=os.urandom(8).hex(), pid=1)
            hello = [frame(_msg.Hello(aid=aid))]
        if kind == 'bytes':
            sealed, data = payload
            if sealed:
                out = session.seal_frames(hello + [len(data).to_bytes(4, 'big') + data])
            else:
                out = (session.seal_frames(hello) if hello else b'') + data
            send_quietly(sock, out)
            half_close(sock)
            # the actor must hang up: on garbage at once, on a valid
            # prefix at our EOF; whatever it sent is well-formed
            reader.feed(read_to_eof(sock))
        elif kind == 'order':
            ping_cid = 2**64 - 2  # distinct from every drawn call id but one
            send_quietly(
                sock,
                session.seal_frames(
                    hello
                    + [frame(m) for m in payload]
                    + [frame(_msg.Start(cid=ping_cid, ns=MAIN, func='ping', kwargs={}))]
                ),
            )
            # closed, or still sane: it answers the ping that came last
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b''
                if not chunk:
                    break
                # (an Error: the drawn messages happened to hold that call id)
                if any(
                    getattr(m, 'cid', None) == ping_cid and isinstance(m, (_msg.Return, _msg.Error))
                    for m in reader.feed(chunk)
                ):
                    break
        else:
            send_quietly(sock, session.seal_frames(hello + [frame(m) for m in payload]))
            want = {m.cid: m for m in payload}
            replies: dict[int, object] = {}
            while len(replies) < len(want):
                chunk = sock.recv(65536)
                assert chunk, f'hung up instead of answering {list(want.values())}'
                for msg in reader.feed(chunk):
                    if isinstance(msg, (_msg.Return, _msg.Error)) and msg.cid in want:
                        replies[msg.cid] = msg
            for cid, msg in replies.items():
                start = want[cid]
                ns = MAIN if start.ns == '__mp_main__' else start.ns
                if (ns, start.func) in _SAFE or ns == 'self':
                    assert isinstance(msg, (_msg.Return, _msg.Error)), msg
                else:  # anything else names no servable function: a typed refusal
                    assert isinstance(msg, _msg.Error), (start, msg)
                    assert msg.type_str.count(':') == 1 and msg.message, msg
                    if not 0 <= start.window <= 1 << 16:
                        assert msg.type_str.endswith(':MsgTypeError'), (start, msg)
                    elif start.ns not in (MAIN, '__mp_main__', 'self') or (
                        not start.func.isidentifier() or start.func.startswith('__')
                    ):
                        assert msg.type_str.endswith(':ModuleNotExposed'), (start, msg)
    finally:
        sock.close()


@pytest.mark.slow
def test_fuzz_authenticated(target):
    """Authenticated hostile input reaches the decoder and the RPC layer;
    each example is refused cleanly and the actor keeps serving."""
    secret = _secret.resolve_secret()  # the real per-user cookie
    held = Peer(target, secret)
    try:
        check_serving(target, secret, held)
        before = target.rss()

        @settings(max_examples=500, **FUZZ_SETTINGS)
        @given(case=st.one_of(byte_cases, order_cases, rpc_cases))
        def fuzz(case):
            run_authenticated_case(target, secret, case)
            check_serving(target, secret, held)

        fuzz()
        grown = target.rss() - before
        print(f'target RSS {before / 2**20:.1f} MiB -> grew {grown / 2**20:.2f} MiB')
        assert grown < RSS_BOUND, f'the target grew by {grown / 2**20:.1f} MiB'
    finally:
        held.close()


@st.composite
def unauthenticated(draw) -> tuple[bytes, str]:
    """A preamble that is wrong somewhere, then a valid request to run
    ``mark(token)``: the token must never be marked."""
    token = os.urandom(6).hex()
    nonce = draw(st.binary(min_size=_auth.NONCE_SIZE, max_size=_auth.NONCE_SIZE))
    head = draw(
        st.one_of(
            st.binary(max_size=512),
            st.binary(max_size=64).map(lambda b: _auth.MAGIC + b),
            st.integers(0, 255)
            .filter(lambda v: v != _auth.VERSION)
            .map(lambda v: _auth.MAGIC + bytes([v, 0, 0, 0]) + nonce),
            # a valid hello, then a proof that is not one (with an empty
            # binding, or random bytes where it goes)
            st.binary(min_size=_auth.PROOF_SIZE, max_size=_auth.PROOF_SIZE).map(
                lambda proof: _auth._hello(nonce) + b'\0\0' + proof
            ),
            st.binary(min_size=_auth.PROOF_SIZE, max_size=_auth.PROOF_SIZE).map(
                lambda proof: _auth._hello(nonce) + proof
            ),
            st.just(b''),  # no preamble at all: straight to tractor frames
        )
    )
    aid = _msg.Aid(name='intruder', uuid=token, pid=1)
    request = frame(_msg.Hello(aid=aid)) + frame(
        _msg.Start(cid=2, ns=MAIN, func='mark', kwargs={'token': token})
    )
    return head + request, token


@pytest.mark.slow
def test_fuzz_unauthenticated(target):
    """Without the secret nothing is decoded: the actor sends at most its
    hello and a refusal, hangs up, and no request behind a bad preamble
    ever runs."""
    secret = _secret.resolve_secret()
    held = Peer(target, secret)
    tokens: list[str] = []
    try:
        before = target.rss()

        @settings(max_examples=250, **FUZZ_SETTINGS)
        @given(case=unauthenticated())
        def fuzz(case):
            data, token = case
            tokens.append(token)
            sock = dial(target)
            try:
                send_quietly(sock, data)
                try:
                    half_close(sock)
                except OSError:
                    pass
                got = read_to_eof(sock)
            finally:
                sock.close()
            assert len(got) <= _auth.HELLO_SIZE + _auth.VERDICT_SIZE, got
            assert got[: _auth.HELLO_SIZE] == _auth._hello(got[8 : _auth.HELLO_SIZE])[: len(got)]
            assert (
                got[_auth.HELLO_SIZE :]
                == (b'\x00' + bytes(_auth.PROOF_SIZE))[: len(got) - _auth.HELLO_SIZE]
            )
            check_serving(target, secret, held)

        fuzz()
        grown = target.rss() - before
        print(f'target RSS {before / 2**20:.1f} MiB -> grew {grown / 2**20:.2f} MiB')
        assert grown < RSS_BOUND, f'the target grew by {grown / 2**20:.1f} MiB'
        marked = held.result(MAIN, 'marks')
        assert not set(marked) & set(tokens), 'a request behind a failed preamble ran'
    finally:
        held.close()
