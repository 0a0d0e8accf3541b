"""`fleet backup FILE` and `fleet restore FILE`: a consistent copy of the store, and the
same fleet brought back from it into a fresh state dir and store. The store's modules
load inside the commands: the database library costs every other `fleet` call a second."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator import keys
from orchestrator.cli._common import EXIT_USAGE, console, fail, load_settings
from orchestrator.cli.format import plain


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def backup(file: Path) -> None:
    """Write a consistent copy of the store to FILE, with the instance key (keep FILE as
    secret as the key). Safe while the daemon runs."""
    from orchestrator.state import backup as backups
    from orchestrator.state.db import existing_store
    from orchestrator.state.errors import DatabaseError, StoreError

    if file.name in ("", ".."):
        fail(f"{str(file)!r} is not a file name: give the file to write the backup to", EXIT_USAGE)
    settings = load_settings()
    key_file = settings.state_dir / keys.KEY_FILE
    if not key_file.exists():
        fail(f"no instance key at {key_file}: is FLEET_STATE_DIR the daemon's state dir?")
    try:
        key = keys.instance_key(settings.state_dir)
    except (OSError, keys.SecretFileError) as exc:
        fail(f"backup failed: {exc}")
    store = existing_store(settings.database_url)
    if store is None:
        fail(f"no store at {settings.database_url}: nothing to back up")
    try:
        counts = backups.write(store, settings.instance, key, file)
    except OSError as exc:  # the file's (the store's are DatabaseErrors)
        fail(f"backup failed: cannot write {file}: {exc.strerror or exc}")
    except (StoreError, DatabaseError) as exc:
        fail(f"backup failed: {_why(exc)}")
    finally:
        store.engine.dispose()
    click.echo(
        f"backed up instance {settings.instance}: {counts['agents']} agents, "
        f"{sum(counts.values())} rows, to {plain(file)} (it holds the instance key: keep it secret)"
    )


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(file: Path) -> None:
    """Restore FILE into this state dir's fresh store; `fleet up` then adopts the fleet's
    running workloads. Refuses a store that already holds agents."""
    from orchestrator.state import backup as backups
    from orchestrator.state.db import open_store
    from orchestrator.state.errors import DatabaseError, StoreError

    settings = load_settings()
    try:
        taken = backups.header(file)
    except backups.BadBackup as exc:
        fail(str(exc), EXIT_USAGE)
    if taken.instance != settings.instance:
        fail(
            f"the backup is of instance {taken.instance!r}, these settings say "
            f"{settings.instance!r}: set FLEET_INSTANCE={taken.instance}",
            EXIT_USAGE,
        )
    try:
        keys.check_key(settings.state_dir, taken.key)
    except ValueError as exc:
        fail(f"{exc}: restore into a fresh state dir", EXIT_USAGE)
    except keys.SecretFileError as exc:
        fail(str(exc))
    try:
        store = open_store(settings.database_url)
    except (StoreError, DatabaseError) as exc:
        fail(f"cannot open the store: {_why(exc)}")
    try:
        counts = backups.restore(store, file, taken)
    except backups.BadBackup as exc:  # found only on the full read
        fail(f"restore failed: {exc}", EXIT_USAGE)
    except (StoreError, DatabaseError) as exc:
        fail(f"restore failed: {_why(exc)}")
    finally:
        store.engine.dispose()
    keys.install_key(settings.state_dir, taken.key)  # last: a failed restore leaves no key
    console.print(
        f"restored instance {taken.instance}: {counts['agents']} agents; "
        "`fleet up` adopts their running workloads"
    )


def _why(exc: BaseException) -> str:
    from orchestrator.state.errors import DatabaseError, failure_reason

    return failure_reason(exc) if isinstance(exc, DatabaseError) else str(exc)
