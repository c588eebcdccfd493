"""The audit trail: every step of the lifecycle, recorded in the same transaction as the step."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from models.entities import AuditEvent


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: int | None,
    details: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        details=details or {},
        ip_address=ip_address,
    )
    session.add(event)
    return event
