"""A throwaway PostgreSQL server for tests, benchmarks and CI.

``PostgresServer`` runs ``initdb`` into a temporary folder and starts ``postgres`` on
127.0.0.1 on a free port, as the ``postgres`` user when we are root (``initdb`` refuses
root). The server programs are found with ``pg_config --bindir`` or in Debian's versioned
folder (``/usr/lib/postgresql/<N>/bin``), since Debian keeps them off ``PATH``.

Run as a script, it serves ``.ci/run``::

    eval "$(python tests/pg_server.py start /tmp/avaturn-pg)"   # exports the DSN
    python tests/pg_server.py stop /tmp/avaturn-pg
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DSN_ENV = "AVATURN_TEST_POSTGRES_DSN"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started on this machine (the message says why)."""


def find_bindir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, check=True)
            candidates.append(out.stdout.decode().strip())
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versioned, key=lambda p: int(Path(p).parent.name), reverse=True)
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    raise PostgresUnavailable("no initdb/pg_ctl found (install Debian's postgresql-15)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One throwaway server: ``start()``, ``dsn``, ``restart()``, ``stop()``."""

    def __init__(self, base: Path | None = None, *, max_connections: int = 200) -> None:
        self.bindir = find_bindir()
        self.max_connections = max_connections
        self.base = Path(base) if base else Path(tempfile.mkdtemp(prefix="avaturn-pg-"))
        self.data = self.base / "data"
        self.port = 0

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, check=check, timeout=120)

    def start(self) -> PostgresServer:
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
        try:
            if not (self.data / "PG_VERSION").exists():
                self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                          "--no-sync", "-E", "UTF8")
            self.port = free_port()
            self._pg_ctl_start()
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            raise PostgresUnavailable(f"{exc}: {detail.decode(errors='replace')}") from exc
        (self.base / "port").write_text(str(self.port))
        return self

    def _pg_ctl_start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.base} -c max_connections={self.max_connections}"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.base / "server.log"), "-w", "-t", "60", "start")

    def restart(self, *, down_for: float = 0.0) -> None:
        """Stop (``-m fast``: connections are dropped) and start again on the same port,
        ``down_for`` seconds later."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        time.sleep(down_for)
        self._pg_ctl_start()

    def stop(self, *, remove: bool = True) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                      check=False)
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in {"start", "stop"}:
        print("usage: pg_server.py start|stop FOLDER", file=sys.stderr)
        return 2
    server = PostgresServer(Path(argv[2]))
    if argv[1] == "stop":
        server.stop()
        return 0
    started = time.monotonic()
    server.start()
    print(f"export {DSN_ENV}={server.dsn}")
    print(f"# PostgreSQL ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
