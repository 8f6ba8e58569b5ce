"""Test data for the Ray study test: FakePrepared whose first label read in a process on the "victim" node
(``ACLECG_TEST_VICTIM`` set to a folder) announces its pid there and sleeps, so the test can kill that node while
one of its tasks is running. Elsewhere it is FakePrepared (same records, same fingerprint)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.test_evaluate import FakePrepared


class SlowPrepared(FakePrepared):
    def labels(self, label_set: str, protocol: str = "multilabel"):
        folder = os.environ.get("ACLECG_TEST_VICTIM")
        if folder:
            Path(folder, f"{os.getpid()}.tmp").write_text(str(os.getppid()))
            os.replace(Path(folder, f"{os.getpid()}.tmp"), Path(folder, str(os.getpid())))
            time.sleep(120)
        return super().labels(label_set, protocol)
