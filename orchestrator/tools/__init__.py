"""The operator's tools around the daemon: the one-command demo, `fleet doctor`, image
builds, the offline simulation, the generated configuration reference, and the fleet
harness that the demo, the tests and the benchmarks share to start and stop real parts.
"""
