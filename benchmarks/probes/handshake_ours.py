"""Log in to the first host of ``config/bench.yml`` the way ``invoke deploy`` does, run
nothing, close: the relay counts this handshake's round trips (run from the project folder)."""

import sys
from pathlib import Path

from deployer.config import load
from deployer.ssh import connect

config = load(Path.cwd(), "bench")
connect(config, config.hosts[0]).close()
sys.exit(0)
