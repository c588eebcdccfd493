"""A collectivity that gave no SIRET is identified by its SIREN (scheme 0002), never by an empty SIRET."""

from dataclasses import replace

from facturx import get_xml_from_pdf
from lxml import etree

from documents import Issuer, render_facture, samples
from mairie.settings import Settings

NS = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


def _buyer_id(pdf: bytes) -> tuple[str, str]:
    _name, xml = get_xml_from_pdf(pdf, check_xsd=True)
    node = etree.fromstring(xml).find(".//ram:BuyerTradeParty/ram:SpecifiedLegalOrganization/ram:ID", NS)
    return node.text, node.get("schemeID")


def _sample():
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return samples.sample_facture(Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62))


def test_buyer_siret_when_given():
    facture = _sample()
    assert _buyer_id(render_facture(facture)) == (facture.collectivity.siret, "0009")


def test_buyer_siren_when_no_siret():
    facture = _sample()
    facture = replace(facture, collectivity=replace(facture.collectivity, siret=""))
    assert _buyer_id(render_facture(facture)) == (facture.collectivity.siren, "0002")
