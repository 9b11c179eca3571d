"""A throw-away PostgreSQL server for tests: ``initdb`` into a temporary folder and
``pg_ctl start`` on a free loopback port, as an unprivileged user (``postgres`` or
``nobody`` when the tests run as root). ``start_postgres`` returns ``(url, stop)`` or
raises ``PgUnavailable`` with the reason (the tests then skip and say why)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from study_util import free_port


class PgUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path:
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(cand, "initdb").exists() and Path(cand, "pg_ctl").exists():
            return Path(cand)
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    raise PgUnavailable(
        "no PostgreSQL server binaries (initdb/pg_ctl); install Debian's 'postgresql' package"
    )


def start_postgres() -> tuple[str, callable]:
    bins = _bin_dir()
    prefix: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="xs-pg-"))
    if os.geteuid() == 0:
        import pwd

        user = None
        for name in ("postgres", "nobody"):
            try:
                user = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        if user is None:
            raise PgUnavailable("running as root and no unprivileged user to run PostgreSQL")
        os.chmod(tmp, 0o755)
        os.chown(tmp, user.pw_uid, user.pw_gid)
        runuser = shutil.which("runuser") or shutil.which("su")
        if runuser is None or not runuser.endswith("runuser"):
            raise PgUnavailable("running as root without 'runuser' to drop privileges")
        prefix = [runuser, "-u", user.pw_name, "--"]
    data = tmp / "data"
    port = free_port()

    def run(*args: str, timeout: float = 60) -> None:
        proc = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=timeout, cwd=tmp
        )
        if proc.returncode != 0:
            raise PgUnavailable(f"{Path(args[0]).name} failed: {proc.stderr.strip()[-300:]}")

    run(str(bins / "initdb"), "-D", str(data), "-U", "xs", "--auth=trust", "-E", "UTF8")
    run(
        str(bins / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(tmp / "log"),
        "-w",
        "-o",
        f"-h 127.0.0.1 -p {port} -k {tmp} -c fsync=off -c max_connections=200",
        "start",
    )

    def stop() -> None:
        subprocess.run(
            [*prefix, str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            cwd=tmp,
        )
        shutil.rmtree(tmp, ignore_errors=True)

    url = f"postgresql+psycopg://xs@127.0.0.1:{port}/postgres"
    deadline = time.time() + 20
    import sqlalchemy as sa

    while True:
        try:
            eng = sa.create_engine(url)
            with eng.connect() as conn:
                conn.exec_driver_sql("select 1")
            eng.dispose()
            break
        except Exception as exc:  # server still starting
            if time.time() > deadline:
                stop()
                raise PgUnavailable(f"PostgreSQL did not accept connections: {exc}") from exc
            time.sleep(0.3)
    return url, stop
