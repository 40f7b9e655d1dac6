"""``custos-demo`` run as a new user runs it: it starts, shows what arrives under a heading that
names the zone, keeps recorded segments out of the way, stops cleanly and says where data is."""

from __future__ import annotations

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
