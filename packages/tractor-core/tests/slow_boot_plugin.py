"""A plugin for ``test_spawning``: a child that loads it (registered in
code, so children import it by name at boot, before their ``Hello``) sleeps
``TRACTOR_TEST_SLOW_BOOT`` seconds while importing it, as a heavy import or
a cold disk would hold it up. The test process imports it before it sets the
variable, so only the children are slow."""

import os
import time

time.sleep(float(os.environ.get('TRACTOR_TEST_SLOW_BOOT', '0')))
