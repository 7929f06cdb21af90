"""etcd registry: lookups and registration through etcd, against the raw
etcd round trip and the connect measured in the same run.

    uv run python scripts/bench/etcd.py [--quick] [--json out.json]

Starts a real single-member etcd on free loopback ports (Debian's
``etcd-server``), a tree registered in it, and a ``prober`` subactor that
never holds a channel to the target (so ``find_actor`` always ranges etcd
and dials). Figures, p50 over TCP:

- ``find_actor`` (open + close of the block) against its floor: one raw
  range round trip (the same JSON request over the same kind of HTTP
  client, undecoded) plus one tractor connect (dial, auth, Hello) to the
  target, each timed alone;
- ``query_actor`` and ``wait_for_actor`` of a registered name;
- registration (one put on the actor's lease);
- ``find_actor`` and a bare range of one name, again, once 10,000 more
  entries (lightweight: registered by the prober, not 10,000 processes)
  are in the store.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

import trio

import tractor
from common import pct

N_ENTRIES = 10_000


async def samples(name: str, n: int, entries: int) -> dict[str, list[float]]:
    """Run in the prober: time each operation ``n`` times."""
    import httpx

    import targets
    from tractor.discovery import get_registry
    from tractor.plugin import wrap_address
    from tractor_etcd._backend import EtcdRegistry

    actor = tractor.current_actor()
    (reg,) = actor.registry_addrs
    out = await targets.lookup_samples(name, n)
    async with get_registry() as store:
        backend: EtcdRegistry = store.registrar.backend
        key = backend._name_key(name)
        body = json.dumps({'key': _b64(key), 'range_end': _b64(key[:-1] + b'0')}).encode()
        url = backend.gateway.urls[0] + '/v3/kv/range'
        uid, addrs = await store.find_actor(name=name)
        addr = wrap_address(addrs[0])
        raw, conn, regs = [], [], []
        async with httpx.AsyncClient() as http:
            for i in range(n + 3):
                t0 = time.perf_counter()
                resp = await http.post(url, content=body)
                t1 = time.perf_counter()
                assert resp.status_code == 200
                chan = await actor.connect(addr)
                t2 = time.perf_counter()
                await chan.aclose()
                t3 = time.perf_counter()
                await store.register_actor(uid=['bench-reg', f'r-{i}'], addrs=addrs)
                t4 = time.perf_counter()
                if i >= 3:
                    raw.append(t1 - t0)
                    conn.append(t2 - t1)
                    regs.append(t4 - t3)
        out.update({'raw_range': raw, 'connect': conn, 'register': regs})

        # the store grows: lightweight entries, 50 puts in flight at a time
        async def put_many(start: int) -> None:
            for j in range(start, entries, 50):
                await store.register_actor(uid=[f'filler-{j}', uuid.uuid4().hex], addrs=addrs)

        t0 = time.perf_counter()
        async with trio.open_nursery() as tn:
            for start in range(50):
                tn.start_soon(put_many, start)
        out['fill_s'] = [time.perf_counter() - t0]
        big = await targets.lookup_samples(name, n)
        out['find_actor_10k'] = big['find_actor']
        rng = []
        for _ in range(n):
            t0 = time.perf_counter()
            assert await store.find_actors(name=f'filler-{entries // 2}')
            rng.append(time.perf_counter() - t0)
        out['find_actors_10k'] = rng
    return out


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


async def _measure(url: str, n: int, entries: int) -> dict[str, list[float]]:
    async with tractor.open_nursery(registry_addrs=[url]) as an:
        await an.start_actor('lookup_target', enable_modules=['targets'])
        prober = await an.start_actor('prober', enable_modules=['targets', __name__])
        out = await prober.run(samples, name='lookup_target', n=n, entries=entries)
        await an.cancel()
    return out


def run(quick: bool) -> dict[str, float]:
    from common import free_tcp_port
    from tractor_testsupport.etcd import EtcdMember, etcd_binary, start_cluster

    if etcd_binary() is None:
        raise SystemExit('etcd is not installed (Debian: apt-get install etcd-server)')
    member = EtcdMember('bench', '127.0.0.1', free_tcp_port(), free_tcp_port())
    try:
        start_cluster([member])
        url = f'etcd://{member.endpoint}/bench{uuid.uuid4().hex[:6]}'
        s = trio.run(_measure, url, 10 if quick else 300, 200 if quick else N_ENTRIES)
    finally:
        member.remove()
    res = {f'etcd.{k}.p50_us': pct(v, 0.5) * 1e6 for k, v in s.items() if k != 'fill_s'}
    res['etcd.fill_s'] = s['fill_s'][0]
    res['etcd.find_actor_over_floor'] = res['etcd.find_actor.p50_us'] / (
        res['etcd.raw_range.p50_us'] + res['etcd.connect.p50_us']
    )
    return res


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--json')
    args = parser.parse_args()
    res = run(args.quick)
    for key, value in res.items():
        print(f'{key:40s} {value:12.3f}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=2)


if __name__ == '__main__':
    sys.exit(main())
