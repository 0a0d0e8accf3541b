"""What runs inside each agent container: bootstrap, then a heartbeat every cycle.

Agents stay thin: the standard library only (their HTTP is `platform_client._http`), never
a vendor SDK, never a vendor or controller key.
"""
