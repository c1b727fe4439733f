"""edgetune: fine-tune compact pretrained models, export them for edge CPUs, benchmark them.

Importing the package sets the offline/telemetry switches (see `edgetune._env`) before any
framework is imported, so users never need to know the traps listed in ENVIRONMENT.md.
"""

from edgetune._env import apply_environment

__version__ = "0.1.0"

apply_environment()
