"""`python -m agent_runtime`: the agent container's entry point.

The stop handlers go in before anything heavy is imported: a SIGTERM that arrives while
the interpreter is still starting must end the agent cleanly, not kill it.
"""

import signal
import sys
import threading

stop = threading.Event()
for signum in (signal.SIGTERM, signal.SIGINT):
    signal.signal(signum, lambda *_: stop.set())

from agent_runtime.main import main  # noqa: E402

sys.exit(main(stop=stop))
