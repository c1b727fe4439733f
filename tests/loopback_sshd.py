"""A throw-away OpenSSH server on loopback, for `bench --remote` (tests/test_bench_remote.py and
benchmarks/bench_remote.py): its own host key, one authorised client key, root login by key only.
Root is needed for sshd's privilege-separation folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
HOST = "root@127.0.0.1"


def available() -> bool:
    return Path(SSHD).is_file() and os.geteuid() == 0 and shutil.which("ssh") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def loopback_sshd(folder: Path) -> Iterator[list[str]]:
    """Run sshd on a free loopback port; yields the ssh `-o` options (Port first) that reach it."""
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], check=True)
    shutil.copy(folder / "client.pub", folder / "authorized_keys")
    port = free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nAcceptEnv TMPDIR\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stderr=subprocess.PIPE)
    opts = [f"Port={port}", f"IdentityFile={folder / 'client'}", "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"]
    probe = ["ssh", *[a for o in opts for a in ("-o", o)], "-o", "BatchMode=yes", HOST, "true"]
    deadline = time.time() + 20
    try:
        while subprocess.run(probe, capture_output=True).returncode:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"loopback sshd did not start: {proc.stderr.read().decode()[-800:]}")
            time.sleep(0.2)
        yield opts
    finally:
        proc.terminate()
        proc.wait(timeout=10)
