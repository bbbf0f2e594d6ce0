"""A throwaway PostgreSQL server on loopback for tests that need a real database.

``running_postgres(folder)`` initialises a fresh cluster with a scram-sha-256 password superuser,
starts it on a free 127.0.0.1 port and stops it (``-m immediate``) on exit. As root (initdb refuses
to run as root) the binaries run as the ``postgres`` system user via ``runuser``, in a dedicated
temporary folder that user can reach. When no PostgreSQL binaries exist, :class:`PostgresUnavailable`
says why, so a fixture can skip with that reason (``make test`` installs PostgreSQL first).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PgServer", "PostgresUnavailable", "find_pg_bin", "running_postgres"]

SYSTEM_USER = "postgres"
SUPERUSER = "runbook"
DBNAME = "events"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started on this machine; the message says exactly why."""


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    dbname: str
    password: str = field(repr=False)

    @property
    def url(self) -> str:
        """Connection URL without the password."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


def find_pg_bin() -> Path | None:
    """The folder holding initdb/pg_ctl/postgres: PATH first, then the newest Debian install."""
    found = shutil.which("initdb")
    if found:
        folder = Path(found).resolve().parent
        if (folder / "pg_ctl").exists() and (folder / "postgres").exists():
            return folder
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.name.split(".")],
    )
    for folder in reversed(candidates):
        if all((Path(folder) / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _system_user() -> pwd.struct_passwd:
    """The unprivileged user to run PostgreSQL as when we are root (created if missing)."""
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    if not shutil.which("useradd"):
        raise PostgresUnavailable(f"running as root, no '{SYSTEM_USER}' user and no useradd")
    done = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"running as root and could not create the '{SYSTEM_USER}' user: {done.stderr.strip()}"
        )
    return pwd.getpwnam(SYSTEM_USER)


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


@contextlib.contextmanager
def running_postgres(folder: Path) -> Iterator[PgServer]:
    """Start a throwaway PostgreSQL cluster; yield how to reach it; stop it on exit.

    Raises:
        PostgresUnavailable: no PostgreSQL binaries, or (as root) no way to run them unprivileged.
        RuntimeError: the binaries exist but initdb or start failed (the server log is included).
    """
    bindir = find_pg_bin()
    if bindir is None:
        raise PostgresUnavailable(
            "no initdb found on PATH or in /usr/lib/postgresql/*/bin "
            "(make test installs it with apt-get when run as root)"
        )
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    scratch: Path | None = None
    if as_root:
        if not shutil.which("runuser"):
            raise PostgresUnavailable("running as root and runuser is missing")
        account = _system_user()
        prefix = ["runuser", "-u", SYSTEM_USER, "--"]
        # pytest's tmp_path is 0700 root: the postgres user could not reach it.
        scratch = Path(tempfile.mkdtemp(prefix="runbook-pg-"))
        scratch.chmod(0o755)
        base = scratch / "pg"
        base.mkdir()
        os.chown(base, account.pw_uid, account.pw_gid)
    else:
        base = Path(folder) / "pg"
        base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    data = base / "data"
    log = base / "postgres.log"
    password = secrets.token_urlsafe(24)
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if as_root:
        os.chown(pwfile, account.pw_uid, account.pw_gid)

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        command = [*prefix, *(str(a) for a in args)]
        return subprocess.run(command, cwd=base, capture_output=True, text=True, timeout=120)

    started = False
    try:
        done = run(
            bindir / "initdb",
            "-D",
            data,
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# throwaway test cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{base}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 20\n"
            )
        # The port is picked before start; retry once or twice if another process takes it.
        for _attempt in range(3):
            port = _free_port()
            done = run(
                bindir / "pg_ctl",
                "-D",
                data,
                "-l",
                log,
                "-o",
                f"-p {port}",
                "-w",
                "-t",
                "60",
                "start",
            )
            if done.returncode == 0:
                started = True
                break
        if not started:
            raise RuntimeError(
                f"pg_ctl start failed ({done.returncode}):\n{done.stdout}{done.stderr}\n"
                f"server log:\n{_log_tail(log)}"
            )
        server = PgServer("127.0.0.1", port, SUPERUSER, DBNAME, password)
        _create_database(server)
        yield server
    finally:
        if started:
            run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        if scratch is not None:
            with contextlib.suppress(OSError):
                shutil.copy(log, Path(folder) / "postgres.log")
            shutil.rmtree(scratch, ignore_errors=True)


def _create_database(server: PgServer) -> None:
    import psycopg

    with psycopg.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    ) as conn:
        conn.execute(f'CREATE DATABASE "{server.dbname}"')
