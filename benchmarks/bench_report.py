"""Report rendering at scale: a run whose traffic log holds 1,000,000 records.

Generates a realistic synthetic run (every stage, load series, a 1M-record traffic log of
redacted records with headers and bodies, as the provider engine writes them), then measures,
each in a fresh subprocess so the peak RSS is the step's own:

* ``harness report DIR`` - re-render readiness.html and junit.xml from results.json, folding
  the traffic log into the monitoring section while streaming it (target: < 15 s, < 500 MB);
* ``assemble`` - the gate plus the secrets scan over every file of the run folder
  (informational: it runs once at the end of ``harness run``).

    python benchmarks/bench_report.py [--records 1000000] [--keep DIR]

Prints the figures; a benchmark, not a test. The log is written to a temporary folder
(about 0.8 GB for 1M records) and removed afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.report.synthetic import all_stages, write_traffic  # noqa: E402

ASSEMBLE = """
import sys, time
from pathlib import Path
from harness.project import load_project
from harness.report.html import write_outputs
from harness.results.gate import assemble_run
from harness.results.serialize import read_stage
out = Path(sys.argv[1]); spec = Path(sys.argv[2])
stages = [read_stage(p) for p in sorted((out / "stages").glob("*.json"))]
run = assemble_run(load_project(spec), stages, spec_path=spec, seed=42,
                   started_at="2026-11-20T10:00:00Z", duration_seconds=600.0,
                   incomplete=False, out_dir=out, environ={})
write_outputs(run, out)
print(run.verdict)
"""


# Runs one command as its only child and reports that child's peak RSS: RUSAGE_CHILDREN in
# this process would be the largest of all the steps so far.
RUNNER = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(done.stdout)
sys.stderr.write(done.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(done.returncode)
"""


def _measure(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB, ru_maxrss of the command alone), its stdout."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *command], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[:3]} failed ({done.returncode}): {done.stderr.strip()}")
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    return seconds, peak_kib / 1024, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="build the run here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    out = root / "run"
    spec = REPO / "contracts" / "petstore" / "integration.yaml"
    try:
        from harness.results.serialize import write_json

        started = time.perf_counter()
        log = write_traffic(out / "load" / "traffic.jsonl", args.records)
        made = time.perf_counter() - started
        size = log.stat().st_size / 1e6
        print(f"traffic log: {args.records:,} records, {size:,.0f} MB, written in {made:.1f} s")
        for index, stage in enumerate(all_stages(failing=True)):
            write_json(out / "stages" / f"{index}-{stage.stage}.json", stage)
        (out / "load" / "locust.html").write_text("<html></html>")
        harness = [sys.executable, "-m", "harness"]

        seconds, peak, verdict = _measure([sys.executable, "-c", ASSEMBLE, str(out), str(spec)])
        print(
            f"assemble + scan + write_outputs: {seconds:.1f} s, peak RSS {peak:.0f} MB ({verdict})"
        )
        os.remove(out / "readiness.html")
        seconds, peak, _ = _measure([*harness, "report", str(out)])
        page = (out / "readiness.html").stat().st_size / 1e6
        print(
            f"harness report DIR (render): {seconds:.1f} s, peak RSS {peak:.0f} MB (page {page:.1f} MB)"
        )
        print("target: render < 15 s and < 500 MB peak memory")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
