"""`make ui`: the Dagster webserver and daemon (`dagster dev`) on the embedded defaults.

Started through exec with SIGINT restored: a `dagster dev` launched from a script otherwise inherits
SIGINT as ignored and cannot be stopped with Ctrl-C or SIGTERM (STACK.md).
"""

import os
import signal
import sys
from pathlib import Path

from btc_platform.config import prepare_instance_home


def main() -> None:
    os.environ.setdefault("DAGSTER_HOME", str(Path("data/dagster_home").resolve()))
    prepare_instance_home(Path(os.environ["DAGSTER_HOME"]))
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    dagster = str(Path(sys.executable).parent / "dagster")
    args = sys.argv[1:] or ["-h", "127.0.0.1", "-p", "3000"]
    os.execv(dagster, [dagster, "dev", "-w", "workspace.yaml", *args])


if __name__ == "__main__":
    main()
