"""A collectivity is identified by its SIREN (scheme 0002, BT-47) and, when it gave one, its SIRET (scheme
0009, BT-46); a collectivity that gave no SIRET has none written, never an empty or made-up one."""

from dataclasses import replace

from facturx import get_xml_from_pdf
from lxml import etree

from documents import Issuer, render_facture, samples, schematron
from mairie.settings import Settings

NS = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


def _xml(pdf: bytes) -> bytes:
    _name, xml = get_xml_from_pdf(pdf, check_xsd=True)
    return xml


def _buyer_id(xml: bytes) -> tuple[str, str]:
    node = etree.fromstring(xml).find(".//ram:BuyerTradeParty/ram:SpecifiedLegalOrganization/ram:ID", NS)
    return node.text, node.get("schemeID")


def _buyer_global_ids(xml: bytes) -> list[tuple[str, str]]:
    nodes = etree.fromstring(xml).findall(".//ram:BuyerTradeParty/ram:GlobalID", NS)
    return [(node.text, node.get("schemeID")) for node in nodes]


def _sample():
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return samples.sample_facture(Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62))


def test_buyer_siret_when_given():
    facture = _sample()
    xml = _xml(render_facture(facture))
    assert _buyer_global_ids(xml) == [(facture.collectivity.siret, "0009")]
    assert _buyer_id(xml) == (facture.collectivity.siren, "0002")
    assert schematron.check_all(xml) == []


def test_buyer_siren_when_no_siret():
    facture = _sample()
    facture = replace(facture, collectivity=replace(facture.collectivity, siret=""))
    xml = _xml(render_facture(facture))
    assert _buyer_id(xml) == (facture.collectivity.siren, "0002")
    assert _buyer_global_ids(xml) == []
    assert schematron.check_all(xml) == []
