"""`python -m agent_runtime`: the agent container's entry point."""

import sys

from agent_runtime.main import main

sys.exit(main())
