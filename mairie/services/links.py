"""The signed links of a convention's approvals, and how long they work."""

from __future__ import annotations

from datetime import date, timedelta

from mairie.links import ApprovalClaim, approval_url, documents_digest
from mairie.settings import Settings
from models.entities import Approval, Convention
from models.types import utcnow


def link_for(settings: Settings, convention: Convention, approval: Approval) -> str:
    """The link of one party's approval, bound to the documents the convention shows."""
    assert convention.id is not None and approval.id is not None
    return approval_url(
        settings,
        ApprovalClaim(convention.id, approval.id, approval.link_nonce, documents_digest(convention.document_hashes)),
    )


def link_expiry(settings: Settings, convention: Convention) -> date:
    """The last day a link works: the earlier of its own expiry and the convention's."""
    link_end = utcnow() + timedelta(days=settings.link_max_age_days)
    end = min(link_end, convention.expires_at) if convention.expires_at else link_end
    return end.date()
