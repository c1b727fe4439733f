"""`edgetune` entry point: a Click group whose subcommands import their modules on first use,
so `edgetune targets` starts fast and never imports torch."""

from __future__ import annotations

import importlib

import click

import edgetune

_COMMANDS = {
    "finetune": ("edgetune.cli.finetune", "finetune", "Fine-tune a pretrained model on your data."),
    "export": ("edgetune.cli.export", "export", "Export a run to a device runtime target (`edgetune targets`), validated and gated."),
    "bench": ("edgetune.cli.bench", "bench", "Measure an exported artefact against a device profile."),
    "predict": ("edgetune.cli.predict", "predict", "Run an exported artefact on images or audio (no torch)."),
    "report": ("edgetune.cli.report", "report", "Summarise a run's exports and benches (report.md)."),
    "models": ("edgetune.cli.listing", "models", "List the model cards."),
    "targets": ("edgetune.cli.listing", "targets", "List the export targets."),
    "profiles": ("edgetune.cli.listing", "profiles", "List device profiles, or check a profile file."),
    "assets": ("edgetune.cli.assets", "assets", "Fetch pretrained weights into the cache."),
    "data": ("edgetune.cli.data", "data", "Write demo data sets that arrive without a hub."),
    "tools": ("edgetune.cli.tools", "tools", "Install the tool environments of converters with conflicting pins (rknn)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS:
            return None
        module, attr, _ = _COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(n, h) for n, (_, _, h) in _COMMANDS.items()])

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name and name not in _COMMANDS and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, list(_COMMANDS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            ctx.fail(f"No such command '{name}'.{hint}")
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(edgetune.__version__, prog_name="edgetune")
def cli() -> None:
    """edgetune: fine-tune compact pretrained models, export them for edge CPUs, benchmark them.

    \b
    Exit codes: 0 ok, 1 internal error, 2 usage, 3 bad input data/files, 4 export validation
    failed, 5 accuracy gate (--max-drop) failed, 6 device budget failed, 7 missing asset,
    8 output not writable (permission, read-only, disk full), 9 remote device unreachable
    (bench --remote), 130 interrupted, 143 terminated (SIGTERM).
    """


def main() -> None:
    cli(prog_name="edgetune")


if __name__ == "__main__":
    main()
