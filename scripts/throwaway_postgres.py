"""A throwaway PostgreSQL cluster in a temporary folder: python scripts/throwaway_postgres.py -- COMMAND [ARGS...]

Runs COMMAND with DATABASE_URL naming a fresh, empty database of a cluster started for it alone, then stops
the cluster and removes its folder, whatever COMMAND's outcome; exits with COMMAND's exit status. The cluster
listens on a Unix socket in its folder only (no TCP port, so it never collides with another server) and trusts
local connections (nothing else can reach it). `./dev test-postgres` runs the test suite this way, and the
tests that start several real processes on one PostgreSQL database use `throwaway_postgres()` directly.

It needs PostgreSQL's server programs (initdb, pg_ctl), found on the PATH or in Debian's
/usr/lib/postgresql/VERSION/bin (`apt install postgresql`). initdb refuses to run as root, so as root
the cluster runs as the `postgres` user (made by Debian's package), or `nobody` without it.
"""

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

DATABASE = "emotionsite"
SUPERUSER = "emotionsite"


class PostgresUnavailable(Exception):
    """PostgreSQL's server programs are not installed; the message says what to install."""


def server_programs() -> Path:
    """The folder of initdb and pg_ctl: the PATH's, else the newest of Debian's versions."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
    if versions:
        return versions[-1].parent
    raise PostgresUnavailable("PostgreSQL's initdb and pg_ctl are not installed (apt install postgresql)")


def _cluster_user() -> pwd.struct_passwd | None:
    """The user the cluster runs as when we are root; None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root, with neither a postgres nor a nobody user to run PostgreSQL as")


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a cluster with one empty database; yield its DATABASE_URL; stop it and remove its folder."""
    programs = server_programs()
    owner = _cluster_user()
    folder = Path(tempfile.mkdtemp(prefix="emotionsite-pg-"))
    data, log = folder / "data", folder / "server.log"
    as_owner = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []} if owner else {}
    if owner:
        os.chown(folder, owner.pw_uid, owner.pw_gid)

    def run(*command: str) -> None:
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, **as_owner)
        if done.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}{server_log}")

    started = False
    try:
        run(str(programs / "initdb"), "--pgdata", str(data), "--username", SUPERUSER, "--auth", "trust",
            "--encoding", "UTF8", "--no-sync")  # fmt: skip
        # fsync off: a throwaway cluster need not survive a power cut, and tests write a lot.
        options = f"-c listen_addresses='' -c unix_socket_directories='{folder}' -c fsync=off -c max_connections=200"
        run(str(programs / "pg_ctl"), "--pgdata", str(data), "--log", str(log), "--options", options, "--wait", "start")
        started = True
        run(str(programs / "createdb"), "--host", str(folder), "--username", SUPERUSER, DATABASE)
        yield f"postgres://{SUPERUSER}@{quote(str(folder), safe='')}/{DATABASE}"
    finally:
        if started:
            run(str(programs / "pg_ctl"), "--pgdata", str(data), "--mode", "fast", "--wait", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def main(arguments: list[str]) -> int:
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    if not arguments:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    # A TERM (CI stopping it, `kill`) ends COMMAND and stops the cluster, as COMMAND's failure would.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    try:
        with throwaway_postgres() as database_url:
            print(f"PostgreSQL: a throwaway cluster at {database_url}", file=sys.stderr, flush=True)
            return subprocess.run(arguments, env={**os.environ, "DATABASE_URL": database_url}).returncode
    except PostgresUnavailable as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
