"""Start and stop the test world: every stand-in on 127.0.0.1, over TLS from a fresh CA.

    tests/services/up [--only NAME,...]     start the world, write run/env, print it
    tests/services/down                      stop exactly the processes `up` started

Services are plug-ins: each `svc_*.py` module beside this file defines

    NAME  = "mongodb"          # unique, used by --only and in log file names
    ORDER = 10                 # start order, lowest first
    def start(ctx: Ctx) -> dict[str, str]:
        '''Start, wait until it serves, return env vars (KS_ prefixed) for tests.'''

and adding a service is adding such a module: nothing here changes.

The env file run/env holds KEY=VALUE lines, one per line, values without spaces or
quotes: read it line by line, splitting at the first `=` (not with bash `source`: a URI
holds `&`). run/env.json holds the same as JSON. Rust and Python tests find it at
tests/services/run/env, or at $KS_ENV_FILE. $KS_RUN_DIR moves the whole run directory
(so two worlds can run side by side).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pki  # noqa: E402

RUN_DIR = Path(os.environ.get("KS_RUN_DIR", HERE / "run")).resolve()
PIDS_FILE = RUN_DIR / "pids"
ENV_FILE = RUN_DIR / "env"


class Ctx:
    """What a service plug-in gets: the run directory, the CA, ports, process spawning."""

    def __init__(self, run_dir: Path, ca: pki.CA):
        self.run_dir = run_dir
        self.ca = ca
        self.ca_file = ca.cert_path
        self.python = sys.executable
        self.services_dir = HERE
        self.env: dict[str, str] = {}
        self.logs_dir = run_dir / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = run_dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def free_port() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a process in its own session; output to logs/NAME.log; pid recorded."""
        log = open(self.logs_dir / f"{name}.log", "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=str(self.run_dir),
            start_new_session=True,
        )
        with open(PIDS_FILE, "a") as f:
            f.write(f"{proc.pid} {name}\n")
        return proc

    def wait_port(self, port: int, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
        """Wait until 127.0.0.1:port accepts connections (or the process died)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"service on port {port} exited with {proc.returncode}; see {self.logs_dir}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s; see {self.logs_dir}")


def _plugins() -> list:
    mods = [importlib.import_module(p.stem) for p in sorted(HERE.glob("svc_*.py"))]
    return sorted(mods, key=lambda m: (m.ORDER, m.NAME))


def _write_env(env: dict[str, str]) -> None:
    for k, v in env.items():
        if any(c in v for c in " \t\n'\""):
            raise ValueError(f"env value for {k} must not contain spaces or quotes: {v!r}")
    tmp = ENV_FILE.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    tmp.replace(ENV_FILE)
    (RUN_DIR / "env.json").write_text(json.dumps(env, indent=2) + "\n")


def up(only: set[str] | None) -> int:
    down(quiet=True)
    if RUN_DIR.exists():
        shutil.rmtree(RUN_DIR)
    RUN_DIR.mkdir(parents=True)
    ca = pki.CA.create(RUN_DIR / "pki")
    ctx = Ctx(RUN_DIR, ca)
    ctx.env.update({"KS_RUN_DIR": str(RUN_DIR), "KS_CA_FILE": str(ctx.ca_file)})
    try:
        for mod in _plugins():
            if only and mod.NAME not in only:
                continue
            started = time.monotonic()
            ctx.env.update(mod.start(ctx))
            print(f"up: {mod.NAME} ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    except Exception as e:
        print(f"up: failed: {e}", file=sys.stderr)
        down(quiet=True)
        return 1
    ctx.env["KS_PIDS"] = ",".join(line.split()[0] for line in PIDS_FILE.read_text().splitlines())
    _write_env(ctx.env)
    print(ENV_FILE.read_text(), end="")
    return 0


def down(quiet: bool = False) -> int:
    if not PIDS_FILE.exists():
        return 0
    entries = [line.split(maxsplit=1) for line in PIDS_FILE.read_text().splitlines() if line.strip()]
    for pid, name in entries:
        try:
            os.killpg(int(pid), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            continue
    deadline = time.monotonic() + 10
    for pid, name in entries:
        while time.monotonic() < deadline:
            try:
                os.killpg(int(pid), 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.05)
        else:
            try:
                os.killpg(int(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not quiet:
            print(f"down: stopped {name.strip()} (pid {pid})", file=sys.stderr)
    PIDS_FILE.unlink()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--only", help="comma-separated service names to start")
    args = parser.parse_args()
    if args.command == "up":
        return up(set(args.only.split(",")) if args.only else None)
    return down()


if __name__ == "__main__":
    sys.exit(main())
