"""The control loop: the pure lifecycle plan and the thin executor that carries it out.

`plan.py` makes every lifecycle decision (start, adopt, restart now or after back-off,
enter or leave a crash loop, retry provisioning, raise an alert) as a pure function of
the store, the runtime's list and the time. `reconciler.py` observes, asks `plan()` and
launches the actions; `executor.py` carries each out and records it, provisioning
(`provisioning.py`) and retirement (`retirement.py`) through their own modules. Neither may
decide anything itself. `accounts.py` talks to the platform's controller API; `alerts.py`
delivers the alert outbox.
"""
