"""A realistic example context for every message: for previews, the docs and the tests.

Every documented key of each template is present (optional ones included), with values of the right
type; names carry accents, an ampersand and a `<script>` so that escaping shows in a preview.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

_CONTACT = {"name": "Service numérique du CDG 62", "email": "numerique@cdg62.example", "phone": "03 21 00 00 00"}
_PAYMENT = {
    "payee": "La Fibre Numérique 59-62",
    "iban": "FR76 3000 1007 9412 3456 7890 185",
    "bic": "BDFEFRPPCCT",
}
_COLLECTIVITY = "Commune d'Hénin-Beaumont & <script>alert(1)</script>"
_CONVENTION = "CONV-2026-00012"
_REQUEST = "DEM-2026-00012"


def example_context(name: str) -> dict[str, Any]:
    """A fresh copy of the example context of message `name` (KeyError for an unknown name)."""
    return dict(_EXAMPLES[name]())


def _quotes_to_signatory() -> dict[str, Any]:
    return {
        "salutation": "Madame la Maire",
        "signatory_name": "Éloïse Lefèvre-Dupré",
        "collectivity_name": _COLLECTIVITY,
        "request_reference": _REQUEST,
        "services_quote": {
            "number": "LFN-DEV-2026-00007",
            "issuer_name": "La Fibre Numérique 59-62",
            "total_ttc": Decimal("1234.50"),
        },
        "support_quote": {
            "number": "CDG62-DEV-2026-00007",
            "issuer_name": "Centre de Gestion du Pas-de-Calais",
            "total_ttc": Decimal("150.00"),
        },
        "population": 1234,
        "population_kind": "population totale",
        "population_vintage": 2023,
        "band_label": "de 1 000 à moins de 1 500 habitants",
        "convention_number": _CONVENTION,
        "approval_url": "https://mairie-connectee.example/approbation/abc.def?x=1&y=2",
        "link_expires_on": date(2026, 3, 1),
        "contact": _CONTACT,
    }


def _request_refused() -> dict[str, Any]:
    return {
        "salutation": "Monsieur le Président",
        "collectivity_name": _COLLECTIVITY,
        "request_reference": _REQUEST,
        "submitted_on": date(2026, 2, 2),
        "reasons": [
            "La collectivité n'est pas située dans le Nord ou le Pas-de-Calais.",
            "Le SIREN indiqué ne correspond à aucune collectivité en activité.",
        ],
        "contact": _CONTACT,
    }


def _operator_task() -> dict[str, Any]:
    return {
        "collectivity_name": "Commune d'Arras",
        "request_reference": _REQUEST,
        "reasons": ["Population de 41 000 habitants : au-delà de 3 500, l'accompagnement est sur devis."],
        "run_url": "http://127.0.0.1:4200/runs/flow-run/0f6e2c1a",
    }


def _run_failed() -> dict[str, Any]:
    return {
        "deployment_name": "campagne-renouvellement",
        "flow_run_name": "campagne-2027",
        "state_label": "en échec",
        "message": "Flow run encountered an exception: StorageUnavailable: base de données injoignable",
        "run_url": "http://127.0.0.1:4200/runs/flow-run/0f6e2c1a",
    }


def _invoice_held() -> dict[str, Any]:
    return {
        "collectivity_name": "Regnauville",
        "identifier": "62700",
        "issuer_names": ["La Fibre Numérique 59-62", "Centre de Gestion du Pas-de-Calais"],
        "what": "premières factures",
        "missing": ["SIRET de l'établissement facturé"],
    }


def _chorus_task() -> dict[str, Any]:
    return {
        "collectivity_name": "Regnauville",
        "identifier": "62700",
        "issuer_name": "La Fibre Numérique 59-62",
        "invoice_number": "LFN-FAC-2026-00042",
        "what": "rejected",
        "status_label": "rejetée",
        "reason": "Numéro d'engagement absent ou inconnu",
        "status_at": datetime(2026, 2, 3, 9, 15, tzinfo=UTC),
    }


def _signature_request() -> dict[str, Any]:
    return {
        "salutation": "Monsieur le Président",
        "signatory_name": "Le Président du Centre de gestion",
        "issuer_name": "Centre de Gestion de la Fonction Publique Territoriale du Pas-de-Calais",
        "collectivity_name": _COLLECTIVITY,
        "convention_number": _CONVENTION,
        "signed_by": ["Éloïse Lefèvre-Dupré, Maire, le 3 février 2026"],
        "sign_url": "https://mairie-connectee.example/signature/xyz",
        "link_expires_on": date(2026, 3, 5),
        "contact": _CONTACT,
    }


def _signature_reminder() -> dict[str, Any]:
    return {
        "salutation": "Madame la Maire",
        "signatory_name": "Éloïse Lefèvre-Dupré",
        "collectivity_name": _COLLECTIVITY,
        "convention_number": _CONVENTION,
        "level": 1,
        "sent_on": date(2026, 2, 2),
        "sign_url": "https://mairie-connectee.example/approbation/abc",
        "expires_on": date(2026, 3, 4),
        "contact": _CONTACT,
    }


def _signature_expired() -> dict[str, Any]:
    return {
        "salutation": "Madame, Monsieur",
        "collectivity_name": _COLLECTIVITY,
        "convention_number": _CONVENTION,
        "request_reference": _REQUEST,
        "sent_on": date(2026, 2, 2),
        "expired_on": date(2026, 3, 4),
        "awaiting": ["la collectivité (Éloïse Lefèvre-Dupré, Maire)"],
        "contact": _CONTACT,
    }


def _convention_declined() -> dict[str, Any]:
    return {
        "collectivity_name": _COLLECTIVITY,
        "convention_number": _CONVENTION,
        "request_reference": _REQUEST,
        "declined_by": "Éloïse Lefèvre-Dupré, Maire",
        "declined_at": datetime(2026, 2, 10, 9, 30, tzinfo=UTC),
        "reason": "Le conseil municipal a préféré reporter l'adhésion à 2027.",
    }


def _question_forwarded() -> dict[str, Any]:
    return {
        "collectivity_name": _COLLECTIVITY,
        "convention_number": _CONVENTION,
        "asker_name": "Éloïse Lefèvre-Dupré, Maire",
        "asker_email": "maire@henin-beaumont.example",
        "asked_at": datetime(2026, 2, 10, 9, 30, tzinfo=UTC),
        "question": "Le NAS est-il livré installé ?\nEt la sauvegarde couvre-t-elle l'école ?",
    }


def _convention_in_force() -> dict[str, Any]:
    return {
        "collectivity_name": _COLLECTIVITY,
        "convention_number": _CONVENTION,
        "effective_on": date(2026, 2, 20),
        "signatures": [
            {
                "party": _COLLECTIVITY,
                "name": "Éloïse Lefèvre-Dupré, Maire",
                "signed_at": datetime(2026, 2, 3, 10, 0, tzinfo=UTC),
            },
            {
                "party": "Centre de Gestion du Pas-de-Calais",
                "name": "Le Président",
                "signed_at": datetime(2026, 2, 12, 14, 0, tzinfo=UTC),
            },
            {
                "party": "La Fibre Numérique 59-62",
                "name": "Le Président",
                "signed_at": datetime(2026, 2, 19, 16, 45, tzinfo=UTC),
            },
        ],
        "document_sha256": "9f2c" + "0" * 60,
        "contact": _CONTACT,
    }


def _provisioning_order() -> dict[str, Any]:
    return {
        "order_number": "LFN-BDC-2026-00012",
        "collectivity_name": _COLLECTIVITY,
        "collectivity_siren": "216204271",
        "convention_number": _CONVENTION,
        "items": [
            {"code": "messagerie-5go", "label": "Messagerie compte 5 Go", "quantity": 12},
            {"code": "nom-de-domaine", "label": "Nom de domaine", "quantity": 1},
        ],
        "collectivity_contact": {"name": "Secrétariat de mairie", "email": "mairie@henin-beaumont.example"},
        "acknowledge_url": "https://mairie-connectee.example/commandes/12/accuse?t=abc",
        "delivered_url": "https://mairie-connectee.example/commandes/12/livree?t=def",
    }


def _invoice_issued() -> dict[str, Any]:
    return {
        "salutation": "Madame la Maire",
        "collectivity_name": _COLLECTIVITY,
        "issuer_name": "La Fibre Numérique 59-62",
        "invoice_number": "LFN-FAC-2026-00042",
        "period_label": "première année du Pack Mairie Connectée",
        "issued_on": date(2026, 3, 1),
        "due_on": date(2026, 3, 31),
        "total_ttc": Decimal("1234.50"),
        "payment": _PAYMENT,
        "billing_channel": "facturx_chorus",
        "service_code": "SERV-FIN",
        "commitment_number": "EJ-2026-118",
        "contact": _CONTACT,
    }


def _payment_reminder() -> dict[str, Any]:
    return {
        "salutation": "Madame la Maire",
        "level": 3,
        "collectivity_name": _COLLECTIVITY,
        "issuer_name": "La Fibre Numérique 59-62",
        "invoice_number": "LFN-FAC-2026-00042",
        "issued_on": date(2026, 3, 1),
        "due_on": date(2026, 3, 31),
        "amount_due": Decimal("1234.50"),
        "payment": _PAYMENT,
        "contact": _CONTACT,
    }


def _accountant_handover() -> dict[str, Any]:
    return {
        "collectivity_name": _COLLECTIVITY,
        "issuer_name": "La Fibre Numérique 59-62",
        "invoice_number": "LFN-FAC-2026-00042",
        "due_on": date(2026, 3, 31),
        "amount_due": Decimal("1234.50"),
        "reminders": [
            {"level": 1, "sent_on": date(2026, 4, 7)},
            {"level": 2, "sent_on": date(2026, 4, 21)},
            {"level": 3, "sent_on": date(2026, 5, 15)},
        ],
    }


def _pes_rejected() -> dict[str, Any]:
    return {
        "issuer_name": "Centre de Gestion de la Fonction Publique Territoriale du Pas-de-Calais",
        "issuer_code": "CDG62",
        "exercice": 2027,
        "bordereau_number": 3,
        "annulation": False,
        "file_name": "PESALR1_28620062100022_2027_0000003.xml",
        "bordereau_rejected": True,
        "reasons": ["ERREUR_CODE_COLLECTIVITE_BUDGET : budget inconnu du poste"],
        "titres": [
            {
                "invoice_number": "CDG62-FAC-2027-00012",
                "credit_note_number": None,
                "collectivity_name": _COLLECTIVITY,
                "piece_number": 41,
                "reasons": ["ERREUR_AUTRE : code produit inconnu"],
            }
        ],
    }


_EXAMPLES = {
    "quotes_to_signatory": _quotes_to_signatory,
    "request_refused": _request_refused,
    "operator_task": _operator_task,
    "run_failed": _run_failed,
    "signature_request": _signature_request,
    "signature_reminder": _signature_reminder,
    "signature_expired": _signature_expired,
    "convention_declined": _convention_declined,
    "question_forwarded": _question_forwarded,
    "convention_in_force": _convention_in_force,
    "provisioning_order": _provisioning_order,
    "invoice_issued": _invoice_issued,
    "payment_reminder": _payment_reminder,
    "accountant_handover": _accountant_handover,
    "invoice_held": _invoice_held,
    "chorus_task": _chorus_task,
    "pes_rejected": _pes_rejected,
}
