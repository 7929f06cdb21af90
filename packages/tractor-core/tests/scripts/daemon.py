"""``tractor.run_daemon()`` serving the compat test functions.

argv: transport, registry address (JSON), then optionally ``--debug``."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tractor

tpt, reg = sys.argv[1], tuple(json.loads(sys.argv[2]))
tractor.run_daemon(
    ['tractor_compat_testfns'],
    name='daemon',
    enable_transports=[tpt],
    registry_addrs=[reg],
    debug_mode='--debug' in sys.argv[3:],
)
