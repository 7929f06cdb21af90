"""A module that fails to import once the file named by
``$SUP_TEST_BREAK_IMPORT`` exists: makes a supervised child's restart fail."""

import os

_flag = os.environ.get('SUP_TEST_BREAK_IMPORT')
if _flag and os.path.exists(_flag):
    raise ImportError(f'broken on purpose ({_flag} exists)')
