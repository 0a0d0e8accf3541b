"""What runs inside each agent container: bootstrap, then a heartbeat every cycle.

Agents stay thin: stdlib plus httpx, never a vendor SDK, never a vendor or controller key.
"""
