"""What a default run shows: the project's own lines on lines of their own, and none of the known harmless library
lines (util/training.py QUIET lists them with the reason); --verbose shows everything, and the run's lightning.log
keeps everything."""

from pathlib import Path

import pytest
from conftest import TINY, run_script

from util import training

pytestmark = pytest.mark.slow


def test_known_library_noise_stays_off_a_default_runs_screen_and_in_its_log(tmp_path: Path) -> None:
    default = run_script("trainer.py", "--save_dir", str(tmp_path / "a"), *TINY)
    verbose = run_script("trainer.py", "--save_dir", str(tmp_path / "b"), *TINY, "--verbose")
    assert default.returncode == 0 and verbose.returncode == 0, default.stderr[-2000:] + verbose.stderr[-2000:]
    on_screen = default.stdout + default.stderr
    seen = [noise for noise in training.QUIET if noise in verbose.stdout + verbose.stderr]
    assert {"GPU available:", "💡 Tip:"} <= set(seen)  # what Lightning 2.6 prints on every run
    (run_dir,) = (tmp_path / "a").glob("*/*")
    log = (run_dir / "lightning.log").read_text()
    for noise in seen:
        assert noise not in on_screen, noise
        assert noise in log or noise == "Total FLOPs: 0", noise  # the summary line is cut, the table kept
    # the project's own lines stand alone, not inside a progress bar's line
    lines = on_screen.replace("\r", "\n").splitlines()
    assert "Monitoring loss/val (min): it picks the best checkpoint and stops early" in lines
    assert f"Run directory: {run_dir}" in lines
