"""The approval pages, all scoped by a signed link: read, sign (with a confirmation step), decline (with a
confirmation step), ask a question, open the documents bound to the link.

Every POST carries the link's CSRF token; nothing is ever changed by a GET. A decision recorded, the
browser is sent back to the page (303), which then shows the decision already taken.

Every field goes through the text policy (`models.text`): a control or bidi character is refused on the
field, in French; the text is NFC-normalised before anything is recorded. Questions are limited per link
and per hour (`MAIRIE_RATE_QUESTIONS_PER_LINK_PER_HOUR`), and only a link whose page offers the question
form (its party's turn has come) can send one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.background import BackgroundTask

from mairie.links import LinkError, documents_digest, read_approval_token
from mairie.services import approvals
from mairie.services.approvals import ApprovalView, Decision
from mairie.web import limits
from mairie.web.limits import RateLimited, subject_of, wait_text
from mairie.web.presenting import NOTICES, build_page
from mairie.web.rendering import public_url_for, render, settings_of
from mairie.web.security import csrf_token, csrf_valid, evidence_of, same_origin
from models.errors import InvalidInput, InvalidTransition
from models.text import text_problem

router = APIRouter(prefix="/approbation/{token}", include_in_schema=False)

TOKEN_MAX = 1024
TEXT_MAX = 4000
SIGN_ANCHORS = {"nom": "nom", "qualite": "qualite", "habilite": "habilite", "deliberation": "deliberation"}
QUESTION_STATES = ("form", "signed", "declined")  # the states whose page offers the question form
MULTILINE_FIELDS = ("motif", "question")


class FormRefused(Exception):
    """A POST without the link's CSRF token, or posted from another site."""


def _check_token(token: str) -> None:
    if len(token) > TOKEN_MAX:
        raise LinkError("Ce lien n'est pas valide : il a été modifié ou il est incomplet.")


def _check_post(request: Request, token: str, csrf: str) -> None:
    _check_token(token)
    settings = settings_of(request)
    if not same_origin(request, settings) or not csrf_valid(settings, token, csrf):
        raise FormRefused


def _urls(request: Request, token: str) -> dict[str, str]:
    names = {
        "page": "approval_page",
        "sign": "approval_sign",
        "sign_confirm": "approval_sign_confirm",
        "decline": "approval_decline",
        "decline_confirm": "approval_decline_confirm",
        "question": "approval_question",
    }
    return {key: public_url_for(request, name, token=token) for key, name in names.items()}


def _page_response(
    request: Request,
    token: str,
    view: ApprovalView,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    open_section: str | None = None,
    notice: str | None = None,
    anchors: dict[str, str] | None = None,
    status_code: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    settings = settings_of(request)
    page = build_page(request, settings, token, view)
    response = render(
        request,
        "approval.html",
        {
            "page": page,
            "csrf": csrf_token(settings, token),
            "urls": _urls(request, token),
            "errors": errors or {},
            "values": values or {},
            "anchors": anchors or {},
            "open_section": open_section,
            "notice": notice,
        },
        status_code=status_code or (422 if errors else page.status_code),
    )
    response.headers.update(headers or {})
    return response


def _back_to_page(
    request: Request, token: str, notice: str | None = None, *, decided: bool = False, in_force: bool = False
) -> RedirectResponse:
    """Back to the page (303). After a decision, its emails are sent once the response is out, and a
    convention that came into force is handed off at once (see `mairie.services.followup`)."""
    url = public_url_for(request, "approval_page", token=token)
    if notice:
        url += f"?enregistre={notice}"
    task = BackgroundTask(request.app.state.after_decision, settings_of(request), in_force) if decided else None
    return RedirectResponse(url, status_code=303, background=task)


@router.get("", name="approval_page")
def approval_page(request: Request, token: str, enregistre: str | None = None) -> Response:
    """The page of a link: the documents and the three actions, or the decision already taken."""
    _check_token(token)
    view = approvals.view(settings_of(request), token)
    return _page_response(request, token, view, notice=NOTICES.get(enregistre or ""))


@router.get("/documents/{filename}", name="approval_document")
def approval_document(request: Request, token: str, filename: str) -> Response:
    """A PDF bound to the link (the quotes, the draft convention, the final convention once in force)."""
    _check_token(token)
    name, content = approvals.document_for(settings_of(request), token, filename)
    safe = "".join(c for c in name if c.isalnum() or c in "-_.") or "document.pdf"
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{safe}"'},
    )


# ------------------------------------------------------------------------------------------------
# Accept and sign
# ------------------------------------------------------------------------------------------------


def text_errors(fields: dict[str, tuple[str, str, bool]]) -> dict[str, str]:
    """The text policy on form fields {key: (label, value, multi-line)}: {key: French message}."""
    errors = {}
    for key, (label, value, multiline) in fields.items():
        problem = text_problem(value, multiline=multiline)
        if problem is not None:
            errors[key] = f"{label} {problem}."
    return errors


def _kept(values: dict[str, str], errors: dict[str, str]) -> dict[str, str]:
    """The values shown again in the form: one the text policy refuses is not (emptied)."""
    return {
        k: ("" if k in errors and text_problem(v, multiline=k in MULTILINE_FIELDS) else v) for k, v in values.items()
    }


def normalised(value: str, *, multiline: bool = False) -> str:
    """A field's value as recorded: NFC, line ends as line feeds, without surrounding spaces (the value
    has passed `text_errors`)."""
    from models.text import check_text

    return check_text(value, multiline=multiline).strip()


def sign_errors(name: str, capacity: str, certified: bool, deliberation: str) -> dict[str, str]:
    """Field-by-field problems of the signature form (the service checks the same again on record)."""
    errors = text_errors(
        {
            "nom": ("Le nom", name, False),
            "qualite": ("La qualité", capacity, False),
            "deliberation": ("La référence de la délibération", deliberation, False),
        }
    )
    if len(name.strip()) < 2:
        errors.setdefault("nom", "Indiquez vos nom et prénom.")
    elif len(name) > 200:
        errors.setdefault("nom", "Le nom est trop long (200 caractères au plus).")
    if len(capacity.strip()) < 2:
        errors.setdefault("qualite", "Indiquez votre qualité (maire, président…).")
    elif len(capacity) > 100:
        errors.setdefault("qualite", "La qualité est trop longue (100 caractères au plus).")
    if len(deliberation) > 300:
        errors.setdefault("deliberation", "La référence est trop longue (300 caractères au plus).")
    if not certified:
        errors["habilite"] = "Cochez la case certifiant que vous êtes habilité(e) à signer."
    return errors


@router.post("/signer", name="approval_sign")
def approval_sign(
    request: Request,
    token: str,
    csrf: Annotated[str, Form()] = "",
    nom: Annotated[str, Form()] = "",
    qualite: Annotated[str, Form()] = "",
    deliberation: Annotated[str, Form()] = "",
    habilite: Annotated[str, Form()] = "",
) -> Response:
    """Check the signature form and show what will be signed; nothing is recorded yet."""
    _check_post(request, token, csrf)
    settings = settings_of(request)
    view = approvals.view(settings, token)
    page = build_page(request, settings, token, view)
    if page.state != "form":
        return _back_to_page(request, token)
    errors = sign_errors(nom, qualite, bool(habilite), deliberation)
    if errors:
        values = _kept({"nom": nom.strip(), "qualite": qualite.strip(), "deliberation": deliberation.strip()}, errors)
        values["habilite"] = habilite
        return _page_response(request, token, view, errors=errors, values=values, anchors=SIGN_ANCHORS)
    values = {
        "nom": normalised(nom),
        "qualite": normalised(qualite),
        "deliberation": normalised(deliberation),
        "habilite": habilite,
    }
    return render(
        request,
        "confirm_sign.html",
        {
            "page": page,
            "decision": values,
            "digest": documents_digest(view.documents),
            "csrf": csrf_token(settings, token),
            "urls": _urls(request, token),
        },
    )


@router.post("/signer/confirmer", name="approval_sign_confirm")
def approval_sign_confirm(
    request: Request,
    token: str,
    csrf: Annotated[str, Form()] = "",
    nom: Annotated[str, Form()] = "",
    qualite: Annotated[str, Form()] = "",
    deliberation: Annotated[str, Form()] = "",
    habilite: Annotated[str, Form()] = "",
    documents: Annotated[str, Form()] = "",
) -> Response:
    """Record the signature of the documents confirmed, with the evidence of this request."""
    _check_post(request, token, csrf)
    settings = settings_of(request)
    view = approvals.view(settings, token)
    if view.approval_status == "pending" and documents != documents_digest(view.documents):
        raise LinkError(
            "Les documents ont changé depuis l'affichage de la page de confirmation : rien n'a été signé. "
            "Rouvrez le lien et vérifiez-les à nouveau.",
            status=409,
        )
    errors = sign_errors(nom, qualite, bool(habilite), deliberation)
    # A refused text is sent on as empty: an approval already decided answers with its decision anyway.
    values = _kept({"nom": nom, "qualite": qualite, "deliberation": deliberation}, errors)
    values["habilite"] = habilite
    if errors and view.approval_status == "pending":
        return _page_response(request, token, view, errors=errors, values=values, anchors=SIGN_ANCHORS)
    decision = Decision(
        normalised(values["nom"]),
        normalised(values["qualite"]),
        bool(habilite),
        normalised(values["deliberation"]) or None,
    )
    try:
        outcome = approvals.sign(settings, token, decision, evidence_of(request, settings))
    except InvalidInput as exc:
        return _page_response(request, token, view, errors={"nom": str(exc)}, values=values, anchors=SIGN_ANCHORS)
    return _back_to_page(
        request,
        token,
        None if outcome.already_decided else "signature",
        decided=not outcome.already_decided,
        in_force=outcome.in_force,
    )


# ------------------------------------------------------------------------------------------------
# Decline
# ------------------------------------------------------------------------------------------------


def decline_errors(name: str, reason: str) -> dict[str, str]:
    errors = text_errors({"motif": ("Le motif", reason, True), "nom-refus": ("Le nom", name, False)})
    if not reason.strip():
        errors.setdefault("motif", "Indiquez le motif du refus.")
    elif len(reason) > TEXT_MAX:
        errors.setdefault("motif", "Le motif est trop long (4 000 caractères au plus).")
    if len(name) > 200:
        errors.setdefault("nom-refus", "Le nom est trop long (200 caractères au plus).")
    return errors


@router.post("/refuser", name="approval_decline")
def approval_decline(
    request: Request,
    token: str,
    csrf: Annotated[str, Form()] = "",
    nom: Annotated[str, Form()] = "",
    motif: Annotated[str, Form()] = "",
) -> Response:
    """Check the decline form and ask for confirmation; nothing is recorded yet."""
    _check_post(request, token, csrf)
    settings = settings_of(request)
    view = approvals.view(settings, token)
    page = build_page(request, settings, token, view)
    if page.state != "form":
        return _back_to_page(request, token)
    errors = decline_errors(nom, motif)
    if errors:
        values = _kept({"nom-refus": nom, "motif": motif}, errors)
        return _page_response(request, token, view, errors=errors, values=values, open_section="refuser")
    return render(
        request,
        "confirm_decline.html",
        {
            "page": page,
            "decline": {"nom": normalised(nom) or view.signatory_name, "motif": normalised(motif, multiline=True)},
            "csrf": csrf_token(settings, token),
            "urls": _urls(request, token),
        },
    )


@router.post("/refuser/confirmer", name="approval_decline_confirm")
def approval_decline_confirm(
    request: Request,
    token: str,
    csrf: Annotated[str, Form()] = "",
    nom: Annotated[str, Form()] = "",
    motif: Annotated[str, Form()] = "",
) -> Response:
    """Record the decline: the convention ends and the other parties are told why."""
    _check_post(request, token, csrf)
    settings = settings_of(request)
    errors = decline_errors(nom, motif)
    if errors:
        view = approvals.view(settings, token)
        values = _kept({"nom-refus": nom, "motif": motif}, errors)
        return _page_response(request, token, view, errors=errors, values=values, open_section="refuser")
    outcome = approvals.decline(
        settings, token, normalised(motif, multiline=True), normalised(nom), evidence_of(request, settings)
    )
    return _back_to_page(
        request, token, None if outcome.already_decided else "refus", decided=not outcome.already_decided
    )


# ------------------------------------------------------------------------------------------------
# Question
# ------------------------------------------------------------------------------------------------


@router.post("/question", name="approval_question")
def approval_question(
    request: Request,
    token: str,
    csrf: Annotated[str, Form()] = "",
    question: Annotated[str, Form()] = "",
) -> Response:
    """Forward a question to the operators (nothing else changes); limited per link and per hour."""
    _check_post(request, token, csrf)
    settings = settings_of(request)
    view = approvals.view(settings, token)
    if build_page(request, settings, token, view).state not in QUESTION_STATES:
        raise InvalidTransition(
            "Ce lien ne permet pas encore, ou plus, de poser une question : rouvrez-le pour voir où en est la "
            "convention, ou écrivez à l'équipe Mairie Connectée."
        )
    problem = text_problem(question, multiline=True)
    if problem is not None:
        return _question_refused(request, token, view, f"La question {problem}.", "")
    if not question.strip():
        return _question_refused(request, token, view, "Écrivez votre question.", question)
    if len(question) > TEXT_MAX:
        too_long = "La question est trop longue (4 000 caractères au plus)."
        return _question_refused(request, token, view, too_long, question)
    claim = read_approval_token(settings, token)
    try:
        limits.hit(
            settings,
            limits.questions(settings),
            subject_of(str(claim.approval_id), claim.nonce),
            request.app.state.clock(),
            lambda left: (
                "Vous avez déjà envoyé plusieurs questions depuis ce lien : l'équipe Mairie Connectée vous répondra "
                f"par courriel. Vous pourrez en envoyer une autre dans {wait_text(left)}."
            ),
        )
    except RateLimited as exc:
        return _question_refused(
            request, token, view, str(exc), question, status_code=429, headers={"Retry-After": str(exc.retry_after)}
        )
    try:
        approvals.ask_question(settings, token, normalised(question, multiline=True), evidence_of(request, settings))
    except InvalidInput as exc:
        return _question_refused(request, token, view, str(exc), question)
    return _back_to_page(request, token, "question", decided=True)


def _question_refused(
    request: Request,
    token: str,
    view: ApprovalView,
    message: str,
    question: str,
    *,
    status_code: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return _page_response(
        request,
        token,
        view,
        errors={"question": message},
        values={"question": question},
        open_section="question",
        status_code=status_code,
        headers=headers,
    )
