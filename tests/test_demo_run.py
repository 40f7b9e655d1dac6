"""``custos-demo`` run as a new user runs it: it starts, shows what arrives under a heading that
names the zone, keeps recorded segments out of the way, stops cleanly and says where data is."""

from __future__ import annotations

import fcntl
import re
import subprocess
import sys
from pathlib import Path

LINE = re.compile(r"^  (\d\d:\d\d:\d\d)  ")


def test_the_demo_runs_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "simulators.demo", "--data", str(data), "--duration", "25",
         "--mqtt-port", "0", "--http-port", "0", "--timezone", "UTC"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, done.stderr + out
    assert "Times are local time, UTC, UTC+00:00." in out
    stamped = [line for line in out.splitlines() if LINE.match(line)]
    assert any("recording.started" in line for line in stamped), out
    assert not any("segment.recorded" in line for line in stamped), "segments only with -v"
    assert any("RECORDINGS" in line for line in stamped), "segments are counted instead"
    assert out.rstrip().endswith(
        f"stopped. Everything is kept in {data}/ (use --fresh to start over)."
    )
    assert (data / "collector").is_dir()


def test_a_part_of_the_demo_that_dies_is_named_with_its_last_words(tmp_path: Path) -> None:
    # Another agent process holds one room's outbox (a second demo on the same data, say).
    data = tmp_path / "demo"
    lock_path = data / "sim" / "demo-ir1" / "outbox.sqlite3.lock"
    lock_path.parent.mkdir(parents=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(
            [sys.executable, "-m", "simulators.demo", "--data", str(data), "--duration", "60",
             "--mqtt-port", "0", "--http-port", "0"],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert "sim exited unexpectedly: " in done.stderr
    assert "outbox.sqlite3 is in use by another agent process" in done.stderr
    assert f"see the logs in {data}/" in done.stderr
