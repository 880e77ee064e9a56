"""Nothing lost, nothing invented: Locust's view of a run against the simulator's traffic log.

Three witnesses count the same requests: Locust's final statistics, the raw samples the hooks
wrote, and the simulator's traffic log (written before each response leaves). After a run they
must agree on the total, and the samples must agree with the log on the status mix (a request
that got no response is status 0 to Locust and ``null`` in the log). A disagreement means the
figures cannot be trusted, so it is an error in the results, never a footnote.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from harness.load.locust_results import LocustTotals
from harness.load.samples import Sample
from harness.provider.traffic import TrafficRecord


@dataclass(frozen=True)
class CrossCheck:
    ok: bool
    summary: str
    traffic: int
    locust: int | None
    samples: int
    status_traffic: dict[str, int]
    status_samples: dict[str, int]


def _mix(counter: Counter[int | None]) -> dict[str, int]:
    return {("none" if k is None else str(k)): v for k, v in sorted(counter.items(), key=str)}


def cross_check(
    records: Sequence[TrafficRecord], samples: Sequence[Sample], locust: LocustTotals
) -> CrossCheck:
    traffic = [r for r in records if r.side == "provider"]
    by_traffic: Counter[int | None] = Counter(r.status for r in traffic)
    by_samples: Counter[int | None] = Counter(s.status or None for s in samples)
    problems: list[str] = []
    if locust.requests is None:
        problems.append("Locust wrote no final statistics")
    elif locust.requests != len(traffic):
        problems.append(
            f"Locust counted {locust.requests} requests, the traffic log {len(traffic)}"
        )
    if len(samples) != len(traffic):
        problems.append(f"the raw samples hold {len(samples)}, the traffic log {len(traffic)}")
    if by_traffic != by_samples and len(samples) == len(traffic):
        diff = sorted({*by_traffic, *by_samples}, key=lambda k: -1 if k is None else k)
        parts = [
            f"{'no response' if k is None else k}: log {by_traffic[k]} / Locust {by_samples[k]}"
            for k in diff
            if by_traffic[k] != by_samples[k]
        ]
        problems.append("status mix differs (" + ", ".join(parts) + ")")
    mix = ", ".join(
        f"{'no response' if k is None else k} x{v}"
        for k, v in sorted(by_traffic.items(), key=lambda kv: -1 if kv[0] is None else kv[0])
    )
    if problems:
        summary = "traffic log and Locust disagree: " + "; ".join(problems)
    else:
        summary = f"traffic log = Locust = samples = {len(traffic)} requests ({mix or 'none'})"
    return CrossCheck(
        ok=not problems,
        summary=summary,
        traffic=len(traffic),
        locust=locust.requests,
        samples=len(samples),
        status_traffic=_mix(by_traffic),
        status_samples=_mix(by_samples),
    )
