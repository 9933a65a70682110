"""A stand-in for anomaly.retrain.worker that dies as ``RETRAIN_TEST_DEATH`` says: killed, hung, or silent."""

from __future__ import annotations

import os
import signal
import time

death = os.environ["RETRAIN_TEST_DEATH"]
if death == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
elif death == "hang":
    time.sleep(60)
else:
    raise SystemExit(3)
