"""`python -m edgetune` (and `torchrun … -m edgetune finetune …`): the CLI."""

from edgetune.cli.main import main

main()
