"""`edgetune models | targets | profiles [check FILE]`."""

from __future__ import annotations

import click

from edgetune.cli.common import emit, handle_errors, json_option, table


@click.command()
@click.option("--task", default=None, help="Only this task's models.")
@click.argument("pattern", default="*")
@json_option
@handle_errors()
def models(task: str | None, pattern: str, as_json: bool) -> None:
    """List model cards (PATTERN is a glob, e.g. 'mobilenet*')."""
    from edgetune.assets import cached_weights
    from edgetune.training import default_freeze
    from edgetune.zoo import MODELS

    rows = []
    for name in MODELS.names(pattern):
        c = MODELS.get(name)
        if task and c.task != task:
            continue
        w = c.weights
        offline = "none needed" if not w.pretrained else (
            "cached" if cached_weights(c) else ("carrier " + w.carrier.requirement if w.carrier else "--weights FILE"))
        rows.append({"name": name, "task": c.task, "params_m": round(c.num_params / 1e6, 2), "input": c.input.describe,
                     "pretrained": w.pretrained, "online": w.online_ref, "offline": offline, "license": c.license,
                     "default_freeze": default_freeze(c, w.pretrained)})
    emit(rows, as_json, lambda rs: click.echo(table(
        [[r["name"], r["task"], r["params_m"], r["input"], r["default_freeze"], r["offline"], r["license"]] for r in rs],
        ["model", "task", "params(M)", "input", "--freeze", "offline weights", "licence"])))


@click.command()
@json_option
@handle_errors()
def targets(as_json: bool) -> None:
    """List export targets and what each needs."""
    from edgetune.export.targets import TARGETS

    rows = [{"id": t.id, "runtime": t.runtime, "precision": t.precision, "quantizer": t.quantizer,
             "atol": t.atol, "description": t.description, "needs": t.needs,
             "options": list(t.backend.honours) if t.quantizer else [],
             "calib_methods": list(t.backend.calib_methods) if t.quantizer else []}
            for t in (TARGETS.get(n) for n in TARGETS.names())]
    emit(rows, as_json, lambda rs: click.echo(table(
        [[r["id"], r["runtime"], r["precision"], r["description"]] for r in rs],
        ["target", "runtime", "precision", "what"])))


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
@handle_errors()
def profiles(ctx: click.Context, as_json: bool) -> None:
    """List device profiles; `profiles check FILE` validates a profile YAML."""
    if ctx.invoked_subcommand:
        return
    from edgetune.profiles import PROFILES

    rows = []
    for n in PROFILES.names():
        p = PROFILES.get(n)
        rows.append({"name": p.name, "cpu": p.cpu_model, "arch": p.arch, "cores": p.cores, "threads": p.threads,
                     "isa": list(p.isa), "ram_mb": p.ram_mb, "storage_mb": p.storage_mb, "targets": list(p.targets),
                     "budgets": p.budgets, "accelerators": list(p.accelerators),
                     "references": [r.as_dict() for r in p.references], "sources": p.sources,
                     "npu": p.npu.as_dict() if p.npu else None,
                     "description": p.description})
    emit(rows, as_json, lambda rs: click.echo(table(
        [[r["name"], r["arch"], f"{r['threads']}/{r['cores']}", r["ram_mb"], ",".join(r["targets"]),
          len(r["references"])] for r in rs],
        ["profile", "arch", "threads/cores", "RAM MB", "preferred targets", "refs"])))


@profiles.command("check")
@click.argument("path")
@json_option
@handle_errors()
def profiles_check(path: str, as_json: bool) -> None:
    """Validate a profile YAML: the first problem as one line naming the field, exit 3."""
    from pathlib import Path

    from edgetune.profiles import load_profile

    p = load_profile(Path(path))
    emit({"profile": p.name, "valid": True, "file": path, "references": len(p.references)}, as_json,
         lambda r: click.echo(f"{path}: profile {r['profile']} is valid ({r['references']} reference latencies)"))
