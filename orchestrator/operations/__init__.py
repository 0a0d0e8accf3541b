"""What operators do and see: commands (spawn, scale, retire, pause), views, metrics,
reports and schedules. The HTTP API, the web dashboard and the scheduler all act through
`commands.py`, so every surface validates, records and wakes the reconciler the same way.
Nothing here touches a workload directly: the reconciler does.
"""
