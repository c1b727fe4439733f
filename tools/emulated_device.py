#!/usr/bin/env python3
"""An emulated aarch64 device on this x86 host: Debian bookworm arm64 (Raspberry Pi OS's base)
run through qemu-user, with edgetune's wheel and only its light dependencies (plus the LiteRT and
NCNN runtimes, as on a board), and an sshd on a loopback port with a throw-away key, so
`edgetune bench --remote` takes the real remote path.

    python tools/emulated_device.py setup     # idempotent: debootstrap once, reinstall the wheel when it changes
    python tools/emulated_device.py start     # sshd on 127.0.0.1:PORT; prints the bench --remote options
    python tools/emulated_device.py run -- edgetune --version
    python tools/emulated_device.py stop
    python tools/emulated_device.py status [--json]

Needs root (chroot, mounts), binfmt_misc and Debian's qemu-user-static + debootstrap (the set-up
names the apt-get line when they are missing). Latency under emulation means nothing; only
numerics (the metric an aarch64 build of the runtimes computes) are worth reading from it.
Stdlib only: it runs before edgetune's own environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = Path(os.environ.get("EDGETUNE_EMU_DIR", Path.home() / ".cache" / "edgetune" / "emulated-aarch64"))
MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
PACKAGES = "python3,python3-venv,python3-pip,openssh-server,ca-certificates"
BINFMT = "/proc/sys/fs/binfmt_misc"
QEMU = "/usr/bin/qemu-aarch64-static"
# The magic/mask of an aarch64 ELF (Debian's /usr/lib/binfmt.d/qemu-aarch64.conf); F: the
# interpreter is opened now, so it works inside the chroot without being copied there.
REGISTRATION = (r":qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
                r":\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:" + QEMU + ":OCF")
VENV = "/opt/edgetune"  # inside the rootfs
# The CPU qemu emulates: a Raspberry Pi 5's. qemu's default "max" CPU also has SVE, SME and i8mm,
# which a Pi 5 lacks, and the runtimes pick kernels by those features: under "max", LiteRT's
# int8 classifier answered the same class for every image (top-1 0.10 vs 0.848 on x86; under
# cortex-a76 its outputs equal x86's). qemu-user reads it from QEMU_CPU at every exec.
CPU = "cortex-a76"
MOUNTS = ("proc", "sys", "dev")  # ONNX Runtime's cpuinfo reads /proc and /sys
# qemu-user shows the host's x86 /proc/cpuinfo, on which ONNX Runtime's aarch64 cpuinfo crashes
# (SIGSEGV on import). The device gets a Raspberry Pi 5's instead: 4 × Cortex-A76 (implementer
# 0x41, part 0xd0b) with the dot-product extension (asimddp), which selects the int8 kernels a
# Pi 5 runs; qemu's default "max" CPU executes them.
CPUINFO_BLOCK = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 "
                 "atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\n"
                 "CPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n")


class HostCannot(SystemExit):
    """One line saying what the host lacks and how to fix it (exit 7, edgetune's missing-asset code)."""

    def __init__(self, message: str) -> None:
        print(f"emulated_device: {message}", file=sys.stderr)
        super().__init__(7)


def check_host() -> None:
    if os.geteuid() != 0:
        raise HostCannot("needs root (chroot and bind mounts); run it as root or in a root container")
    missing = [p for p in ("debootstrap", "qemu-aarch64-static") if shutil.which(p) is None]
    if missing:
        raise HostCannot(f"{' and '.join(missing)} not found (fix: apt-get install -y debootstrap qemu-user-static)")
    if not os.path.exists(f"{BINFMT}/register"):
        r = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT], capture_output=True, text=True)
        if r.returncode:
            raise HostCannot(f"cannot mount binfmt_misc ({r.stderr.strip()}); the kernel or container does not allow it")
    if not os.path.exists(f"{BINFMT}/qemu-aarch64"):
        with open(f"{BINFMT}/register", "w") as f:
            f.write(REGISTRATION)


def rootfs(d: Path) -> Path:
    return d / "rootfs"


def mounted(d: Path) -> list[str]:
    root = str(rootfs(d).resolve())
    with open("/proc/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(root + "/")]


def mount_all(d: Path) -> None:
    have = mounted(d)
    for m in MOUNTS:
        target = rootfs(d) / m
        if str(target.resolve()) not in have:
            subprocess.run(["mount", "--rbind", f"/{m}", str(target)], check=True)
            subprocess.run(["mount", "--make-rslave", str(target)], check=True)  # nothing leaks back to the host
    cpuinfo = rootfs(d) / "proc" / "cpuinfo"
    if str(cpuinfo) not in mounted(d):
        fake = d / "cpuinfo"
        fake.write_text("\n".join(CPUINFO_BLOCK.format(i=i) for i in range(4)))
        subprocess.run(["mount", "--bind", str(fake), str(cpuinfo)], check=True)


def umount_all(d: Path) -> None:
    for m in sorted(mounted(d), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


def chroot(d: Path, command: str, *, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    mount_all(d)
    env = {"PATH": f"{VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8", "QEMU_CPU": CPU,
           "PIP_CERT": "/etc/ssl/certs/host-ca.crt", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run(["chroot", str(rootfs(d)), "/bin/sh", "-c", command], env=env, check=check,
                          capture_output=capture, text=True)


def build_wheel(d: Path) -> Path:
    out = d / "wheels"
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(REPO)], check=True)
    return next(out.glob("edgetune-*.whl"))


def device_runtimes() -> list[str]:
    """The LiteRT and NCNN runtimes a board runs (the `litert` extra and NCNN's own wheel; not
    their converters, which stay on the host), as pyproject.toml pins them."""
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return [*extras["litert"], *(d for d in extras["ncnn"] if d.startswith("ncnn=="))]


def _content_hash(wheel: Path, extras: str) -> str:
    """The wheel's files, not its zip bytes (zip timestamps change on every build): an unchanged
    edgetune is not reinstalled."""
    import zipfile

    h = hashlib.sha256(extras.encode())
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            h.update(name.encode())
            h.update(z.read(name))
    return h.hexdigest()[:16]


def setup(d: Path, extras: str) -> dict:
    check_host()
    d.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    if not (rootfs(d) / ".edgetune-debootstrap-done").is_file():
        umount_all(d)  # a half-made rootfs may still have the host's /proc, /sys, /dev or shares bound in it:
        if mounted(d):  # deleting through them would delete the host's files
            raise HostCannot(f"cannot unmount {', '.join(mounted(d))}; unmount them before set-up starts over")
        shutil.rmtree(rootfs(d), ignore_errors=True)
        t = time.perf_counter()
        subprocess.run(["debootstrap", "--arch=arm64", "--variant=minbase", f"--include={PACKAGES}", SUITE,
                        str(rootfs(d)), MIRROR], check=True, stdout=subprocess.DEVNULL)
        (rootfs(d) / ".edgetune-debootstrap-done").write_text(SUITE)
        times["debootstrap_s"] = round(time.perf_counter() - t, 1)
    shutil.copy("/etc/resolv.conf", rootfs(d) / "etc/resolv.conf")
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs(d) / "etc/ssl/certs/host-ca.crt")
    wheel = build_wheel(d)
    runtimes = device_runtimes()
    stamp = _content_hash(wheel, extras + " ".join(runtimes))
    marker = rootfs(d) / "opt" / f".edgetune-installed-{stamp}"
    if not marker.is_file():
        t = time.perf_counter()
        shutil.copy(wheel, rootfs(d) / "tmp" / wheel.name)
        spec = f"/tmp/{wheel.name}" + (f"[{extras}]" if extras else "")
        chroot(d, f"test -x {VENV}/bin/python || python3 -m venv {VENV}; "
                  f"{VENV}/bin/pip install --quiet --force-reinstall --no-deps /tmp/{wheel.name} && "
                  f"{VENV}/bin/pip install --quiet '{spec}' " + " ".join(f"'{r}'" for r in runtimes))
        for old in (rootfs(d) / "opt").glob(".edgetune-installed-*"):
            old.unlink()
        marker.write_text(wheel.name)
        times["pip_install_s"] = round(time.perf_counter() - t, 1)
    arch = chroot(d, "uname -m", capture=True).stdout.strip()
    version = chroot(d, "edgetune --version", capture=True).stdout.strip()
    return {"dir": str(d), "arch": arch, "cpu": CPU, "features": cpu_features(d), "edgetune": version,
            "wheel": wheel.name, **times}


def cpu_features(d: Path) -> dict:
    """What the runtimes inside see (the kernel's HWCAP bits through qemu): a Pi 5 has the
    dot-product extension and neither i8mm nor SVE."""
    probe = ("import ctypes; g = ctypes.CDLL(None).getauxval; g.restype = ctypes.c_ulong; "
             "h, h2 = g(16), g(26); print(h >> 20 & 1, h2 >> 13 & 1, h >> 22 & 1)")
    bits = chroot(d, f'python3 -c "{probe}"', capture=True).stdout.split()
    return dict(zip(("asimddp", "i8mm", "sve"), (b == "1" for b in bits), strict=True))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def share(d: Path, folders: list[Path]) -> list[str]:
    """Bind host folders read-only at the same paths inside, so a run's recorded data paths
    resolve there too (`bench --emulate` measures on the very val files the host used)."""
    have = mounted(d)
    out = []
    for f in folders:
        f = f.resolve()
        if str(f) in ("/", "/tmp", "/proc", "/sys", "/dev"):
            raise HostCannot(f"--share {f} would hide the device's own {f} (read-only); share a folder inside it")
        target = rootfs(d) / str(f).lstrip("/")
        if str(target.resolve()) not in have:
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "--bind", str(f), str(target)], check=True)
            subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        out.append(str(f))
    return out


def start(d: Path, folders: list[Path]) -> dict:
    check_host()
    if not (rootfs(d) / ".edgetune-debootstrap-done").is_file():
        raise HostCannot(f"no emulated device in {d} (fix: python tools/emulated_device.py setup)")
    info_file = d / "device.json"
    if info_file.is_file():
        info = json.loads(info_file.read_text())
        if _alive(info):
            return info
    keys = d / "ssh"
    keys.mkdir(exist_ok=True)
    if not (keys / "client").is_file():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "client")], check=True)
    root_ssh = rootfs(d) / "root" / ".ssh"
    root_ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copy(keys / "client.pub", root_ssh / "authorized_keys")
    port = free_port()
    shared = share(d, folders)
    chroot(d, "mkdir -p /run/sshd && ssh-keygen -A >/dev/null && "
              f"/usr/sbin/sshd -p {port} -o ListenAddress=127.0.0.1 -o PermitRootLogin=prohibit-password "
              "-o PasswordAuthentication=no -o PidFile=/run/sshd-edgetune.pid "
              f"-o 'SetEnv=PATH={VENV}/bin:/usr/bin:/bin QEMU_CPU={CPU}'")
    info = {"host": "root@127.0.0.1", "port": port, "key": str(keys / "client"), "shared": shared, "cpu": CPU,
            "pid_file": str(rootfs(d) / "run" / "sshd-edgetune.pid"),
            "edgetune": f"{VENV}/bin/edgetune",
            "ssh_options": ["-o", f"Port={port}", "-o", f"IdentityFile={keys / 'client'}",
                            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                            "-o", "LogLevel=ERROR"]}
    for _ in range(60):  # sshd under emulation takes a few seconds to listen
        if _alive(info):
            break
        time.sleep(1)
    else:
        raise HostCannot("sshd inside the emulated device did not start listening within 60 s")
    info_file.write_text(json.dumps(info, indent=1))
    return info


def _alive(info: dict) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", int(info["port"]))) == 0


def stop(d: Path) -> dict:
    pid_file = rootfs(d) / "run" / "sshd-edgetune.pid"
    if pid_file.is_file():
        subprocess.run(["kill", pid_file.read_text().strip()], capture_output=True)
        pid_file.unlink(missing_ok=True)
    (d / "device.json").unlink(missing_ok=True)
    time.sleep(0.5)
    umount_all(d)
    return {"stopped": True}


def status(d: Path) -> dict:
    info = json.loads((d / "device.json").read_text()) if (d / "device.json").is_file() else None
    return {"dir": str(d), "rootfs": (rootfs(d) / ".edgetune-debootstrap-done").is_file(),
            "installed": [p.read_text() for p in (rootfs(d) / "opt").glob(".edgetune-installed-*")]
            if rootfs(d).is_dir() else [], "running": bool(info and _alive(info)), "device": info}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["setup", "start", "stop", "status", "run"])
    ap.add_argument("rest", nargs="*", help="run: the command, after --")
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--extras", default="", help="edgetune extras for the device, e.g. litert")
    ap.add_argument("--share", type=Path, action="append", default=None,
                    help="host folder visible read-only at the same path inside (repeatable; default: the "
                         "repository's parent folder)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.command == "run":
        cmd = a.rest[1:] if a.rest[:1] == ["--"] else a.rest
        sys.exit(chroot(a.dir, " ".join(cmd), check=False).returncode)
    result = {"setup": lambda: setup(a.dir, a.extras), "start": lambda: start(a.dir, a.share or [REPO.parent]), "stop": lambda: stop(a.dir),
              "status": lambda: status(a.dir)}[a.command]()
    print(json.dumps(result) if a.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
