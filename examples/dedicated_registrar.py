"""A registrar of its own: ``tractor.run_daemon([])`` in a separate process
holds the registry; the application tree joins it instead of becoming it,
registers a service there and finds it by name.

The registry address is the TCP default (``127.0.0.1:1616``, or
``TRACTOR_TCP_REGISTRY=host:port``), for the daemon and the app alike.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import trio

import tractor


def registry_addr() -> tuple[str, int]:
    host, _, port = os.environ.get('TRACTOR_TCP_REGISTRY', '127.0.0.1:1616').rpartition(':')
    return host, int(port)


def wait_until_listening(
    addr: tuple[str, int], daemon: subprocess.Popen, timeout: float = 15
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f'the registrar exited early ({daemon.returncode})')
        try:
            socket.create_connection(addr, timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f'no registrar at {addr} after {timeout}s')


async def hello() -> str:
    return f'hello from {tractor.current_actor().name}'


async def app() -> None:
    async with tractor.open_nursery(enable_transports=['tcp']) as an:
        assert not tractor.current_actor().is_registrar  # the daemon is
        await an.start_actor('greeter', enable_modules=[__name__])
        async with tractor.wait_for_actor('greeter') as portal:
            print(await portal.run(hello), flush=True)
        await an.cancel()


def main() -> None:
    daemon = subprocess.Popen(
        [
            sys.executable,
            '-c',
            "import tractor; tractor.run_daemon([], enable_transports=['tcp'], name='registrar')",
        ],
        stderr=subprocess.DEVNULL,  # its Ctrl-C traceback at the end is expected
    )
    try:
        wait_until_listening(registry_addr(), daemon)
        print('registrar up, pid', daemon.pid, flush=True)
        trio.run(app)
    finally:
        daemon.send_signal(signal.SIGINT)  # a graceful teardown
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    print('registrar stopped', flush=True)


if __name__ == '__main__':
    main()
