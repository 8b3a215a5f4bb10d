"""The emulator's constructor arguments: checked before anything starts, and the
deprecated webhook-fault flags folded into a fault plan.
"""

from __future__ import annotations

import warnings

import attrs

from ..._errors import ConfigurationError
from ._fault_plan import FaultPlan

__all__ = ["check_options", "deprecated_webhook_faults"]


def check_options(
    api_key: str, delays: tuple[float, ...], webhook_max_attempts: int, export_size: int
) -> None:
    if not api_key:
        raise ConfigurationError("api_key must not be empty")
    if any(delay < 0 for delay in delays):
        raise ConfigurationError("delays must not be negative")
    if webhook_max_attempts < 1:
        raise ConfigurationError("webhook_max_attempts must be at least 1")
    if export_size < 12:
        raise ConfigurationError("export_size must be at least 12 bytes (the GLB header)")


def deprecated_webhook_faults(
    plan: FaultPlan | None, duplicate: bool | None, reorder: bool | None
) -> FaultPlan | None:
    """``plan`` with the deprecated ``duplicate_webhooks`` / ``reorder_webhooks`` in it."""
    if duplicate is None and reorder is None:
        return plan
    instead = "faults=FaultPlan(webhooks=WebhookFaults(duplicate=1.0, reorder=True))"
    message = f"duplicate_webhooks and reorder_webhooks are deprecated: pass {instead}"
    warnings.warn(message, DeprecationWarning, stacklevel=3)
    plan = plan or FaultPlan()
    webhooks = attrs.evolve(
        plan.webhooks,
        duplicate=1.0 if duplicate else plan.webhooks.duplicate,
        reorder=bool(reorder) or plan.webhooks.reorder,
    )
    return attrs.evolve(plan, webhooks=webhooks)
