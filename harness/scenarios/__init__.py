"""The scenario stage: fault-injection scenarios that judge the integration's error handling.

``run_scenarios(project, options, out_dir, progress)`` runs the integration under test against
the provider engine once per scenario - built-in ones (``harness/scenarios/builtin/``) and the
user's (``scenarios/`` next to the spec) - and judges each run from the traffic of both sides,
the exit status, the output and the destination's contents, against the spec's declared
``error_handling`` policy.
"""

from harness.scenarios.model import Expectation, Scenario, Setup
from harness.scenarios.stage import ScenariosOptions, list_scenarios, run_scenarios

__all__ = [
    "Expectation",
    "Scenario",
    "ScenariosOptions",
    "Setup",
    "list_scenarios",
    "run_scenarios",
]
