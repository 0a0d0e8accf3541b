"""`python -m agent_runtime`: the agent container's entry point.

SIGTERM and SIGINT are blocked before anything heavy is imported, and one thread waits for
them and sets `stop`: a signal that arrives while the interpreter is still starting ends
the agent cleanly, not kills it. No Python handler: it would run inside whatever the main
thread was doing, and `Event.set` there can wait forever for the event's own lock, held
by the code it interrupted (an agent given SIGTERM twice in a row hung so in CI).
"""

import signal
import sys
import threading

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}

stop = threading.Event()
signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # for every thread started after


def _stop_on_signal() -> None:
    signal.sigwait(STOP_SIGNALS)
    stop.set()


threading.Thread(target=_stop_on_signal, name="stop-signals", daemon=True).start()

from agent_runtime.main import main  # noqa: E402

sys.exit(main(stop=stop))
