"""A stand-in for anomaly.retrain.worker that behaves as ``RETRAIN_TEST_DEATH`` says.

``kill``, ``hang`` and ``exit`` die without an outcome; ``worse`` "trains" a challenger (a copy of
the champion's manifest) whose held-out false-positive rate is far above the champion's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

death = os.environ["RETRAIN_TEST_DEATH"]
if death == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
elif death == "hang":
    time.sleep(60)
elif death == "worse":
    job = json.loads(Path(sys.argv[1]).read_text())
    shutil.copytree(job["champion"], job["out"])
    outcome = {
        "status": "trained",
        "out": job["out"],
        "summary": {"train_items": 80, "evaluation_items": 20},
        "champion": {"threshold": 0.5, "normal": 20, "fpr": 0.05},
        "challenger": {"threshold": 0.5, "normal": 20, "fpr": 0.4},
    }
    Path(sys.argv[2]).write_text(json.dumps(outcome))
else:
    raise SystemExit(3)
