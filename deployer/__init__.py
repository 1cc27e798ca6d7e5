"""sternway: Capistrano-style deploys of an app to your own servers over SSH.

The distribution (and program) is ``sternway``; the import package keeps the name
``deployer``. This is the one place the version is written: the wheel's metadata,
``sternway --version`` and the webhooks' User-Agent all read it from here.
"""

NAME = "sternway"
__version__ = "0.2.0"
USER_AGENT = f"{NAME}/{__version__}"
# How messages name the command to run next: `invoke` (tasks.py) unless the program started.
PROGRAM = ["invoke"]


def program_name() -> str:
    """``sternway`` when run as the program, ``invoke`` when run through a tasks.py."""
    return PROGRAM[0]
