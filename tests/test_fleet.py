"""`bench --fleet` / several `--remote` (issue 20): every device benched in parallel, each isolated,
one merged table and one summarising exit code. Three "boards" on the loopback sshd of
tests/loopback_sshd.py (two names for it, and one host where nothing listens)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from conftest import invoke
from loopback_sshd import free_port

REMOTE_EDGETUNE = f"{sys.executable} -m edgetune.cli.main"  # the device's edgetune: this venv's


def _fleet_file(tmp_path: Path, sshd: list[str], devices: list[dict]) -> Path:
    opts = [o for o in sshd if o != "--ssh-option"]
    for d in devices:
        d.setdefault("edgetune", REMOTE_EDGETUNE)
        d.setdefault("ssh_options", opts)
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump({"targets": ["cpu-int8"], "devices": devices}))
    return p


def test_fleet_keeps_every_board_apart_and_a_dead_one_hides_nothing(tiny_run, tiny_exports, sshd, tmp_path):
    opts = [o for o in sshd if o != "--ssh-option"]
    dead_opts = [f"Port={free_port()}", *opts[1:]]  # nothing listens there
    fleet = _fleet_file(tmp_path, sshd, [
        {"host": "root@127.0.0.1", "profile": "raspberry-pi-5"},
        {"host": "root@localhost", "profile": "raspberry-pi-5"},  # a second board of the same profile
        {"host": "root@127.0.0.3", "profile": "jetson-orin-nano", "ssh_options": dead_opts}])
    res = invoke("bench", tiny_run, "--fleet", fleet, "--runs", 100, "--json")
    assert res.exit_code == 9, res.stderr[-1500:]  # the unreachable board's code
    s = json.loads(res.stdout)
    rows = {r["host"]: r for r in s["rows"]}
    assert [r["host"] for r in s["rows"]] == ["root@127.0.0.1", "root@localhost", "root@127.0.0.3"]
    for host in ("root@127.0.0.1", "root@localhost"):
        assert rows[host]["status"] in ("pass", "fail") and rows[host]["latency_p50_ms"] > 0
        kept = json.loads(Path(rows[host]["result"]).read_text())
        assert kept["remote"] == host and kept["target"] == "cpu-int8"
    assert Path(rows["root@127.0.0.1"]["result"]) == tiny_run / "fleet" / "root_127.0.0.1" / "raspberry-pi-5" / "cpu-int8.json"
    assert rows["root@127.0.0.3"]["status"] == "error" and rows["root@127.0.0.3"]["exit_code"] == 9
    assert rows["root@127.0.0.3"]["error"].startswith("ssh to root@127.0.0.3 failed: ")
    assert s["errors"] == 1 and json.loads((tiny_run / "fleet" / "fleet.json").read_text())["rows"] == s["rows"]
    assert res.stderr.strip().splitlines()[-1].startswith(
        f"edgetune: error: 1 of 3 device bench(es) failed and {s['failed']} missed budgets (hint: each row says")


def test_several_remotes_share_the_profile_and_print_one_table(tiny_run, tiny_exports, sshd):
    """Several --remote share --profile and the ssh options; the table comes before the error line
    (both boards unreachable here: the path is the same, and no bench has to run)."""
    dead = ["--ssh-option", f"Port={free_port()}", *sshd[2:]]
    res = invoke("bench", tiny_run, "--target", "cpu-int8", "--profile", "raspberry-pi-5", "--remote", "root@127.0.0.1",
                 "--remote", "root@localhost", "--remote-edgetune", REMOTE_EDGETUNE, *dead)
    assert res.exit_code == 9, res.stderr[-1500:]
    lines = res.stdout.splitlines()
    assert lines[0].split()[:4] == ["host", "profile", "target", "status"]
    for host in ("root@127.0.0.1", "root@localhost"):
        row = next(line for line in lines if line.startswith(host + " "))
        assert row.split()[1:4] == ["raspberry-pi-5", "cpu-int8", "ERROR"] and f"ssh to {host} failed" in row
    assert "2 of 2 device bench(es) failed" in res.stderr


def test_fleet_mistakes_are_one_line(tiny_run, tiny_exports, tmp_path):
    bad = tmp_path / "fleet.yaml"
    bad.write_text("devices:\n  - host: pi@a\n")
    res = invoke("bench", tiny_run, "--target", "cpu-int8", "--fleet", bad)
    assert res.exit_code == 3 and res.stderr.strip() == f"edgetune: error: {bad}: field 'devices[0].profile' is missing"
    bad.write_text("devices: []\n")
    res = invoke("bench", tiny_run, "--target", "cpu-int8", "--fleet", bad)
    assert res.exit_code == 3 and "field 'devices' must be a non-empty list of devices, got []" in res.stderr
    bad.write_text("devices:\n  - host: pi@a\n    profile: raspbery-pi-5\n")
    res = invoke("bench", tiny_run, "--target", "cpu-int8", "--fleet", bad)
    assert res.exit_code == 2 and "raspberry-pi-5" in res.stderr  # unknown profile, with its close match, before any ssh
    bad.write_text("devices:\n  - {host: pi@a, profile: raspberry-pi-5}\n  - {host: pi@a, profile: raspberry-pi-4}\n")
    res = invoke("bench", tiny_run, "--target", "cpu-int8", "--fleet", bad)
    assert res.exit_code == 3 and f"{bad}: field 'devices[1].host' lists pi@a a second time" in res.stderr
    res = invoke("bench", tiny_run, "--target", "cpu-int8", "--remote", "pi@a", "--remote", "pi@b")
    assert res.exit_code == 2 and res.stderr.strip() == (
        "edgetune: error: several --remote hosts need --profile (the same for each), or a fleet file with one "
        "profile per device (hint: edgetune bench RUN --fleet fleet.yaml (docs/DEVICE.md))")
    res = invoke("bench", tiny_run, "--target", "cpu-int8")
    assert res.exit_code == 2 and "--profile is needed" in res.stderr
