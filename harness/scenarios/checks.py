"""The judges: one function per expectation a scenario can state, by name.

Each reads an ``Observation`` and the spec's policy and returns a ``Judgement`` (see
``judgement``); the modules ``judge_*`` hold them by theme.
"""

from __future__ import annotations

from harness.scenarios.judge_auth import judge_auth_bounded, judge_reauth, judge_token_reuse
from harness.scenarios.judge_data import judge_invalid_data, judge_sync_accuracy
from harness.scenarios.judge_outcome import judge_alert, judge_no_crash, judge_outcome
from harness.scenarios.judge_retries import (
    judge_rate_compliance,
    judge_retries,
    judge_retry_after,
    judge_timeout,
    peak_in_window,
)
from harness.scenarios.judgement import CODES, Judge, Judgement

JUDGES: dict[str, Judge] = {
    "no_crash": judge_no_crash,
    "outcome": judge_outcome,
    "retries": judge_retries,
    "retry_after": judge_retry_after,
    "rate_compliance": judge_rate_compliance,
    "reauth": judge_reauth,
    "auth_bounded": judge_auth_bounded,
    "token_reuse": judge_token_reuse,
    "timeout": judge_timeout,
    "invalid_data": judge_invalid_data,
    "sync_accuracy": judge_sync_accuracy,
    "alert": judge_alert,
}


__all__ = [
    "CODES",
    "JUDGES",
    "Judge",
    "Judgement",
    "judge_alert",
    "judge_auth_bounded",
    "judge_invalid_data",
    "judge_no_crash",
    "judge_outcome",
    "judge_rate_compliance",
    "judge_reauth",
    "judge_retries",
    "judge_retry_after",
    "judge_sync_accuracy",
    "judge_timeout",
    "judge_token_reuse",
    "peak_in_window",
]
