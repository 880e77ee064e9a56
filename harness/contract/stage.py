"""The contract stage's entry point, as the pipeline (``harness run``) and the faces import it."""

from __future__ import annotations

from harness.contract.options import ContractOptions
from harness.contract.runner import plan_contract, run_contract

__all__ = ["ContractOptions", "plan_contract", "run_contract"]
