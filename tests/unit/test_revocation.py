"""Revocation and the certificate check: a standard CRL signed by the CA, re-read when it changes, and only
certificates the CA issued itself stand for a participant."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography import x509

from gateway.domain.errors import Unauthenticated
from gateway.security import pki, revocation
from gateway.security.tls import TlsFolder
from tests.integration.test_tls import forged_chain


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def folder_with(tmp_path: Path, *participants: str) -> TlsFolder:
    pki.init_pki(tmp_path / "pki", list(participants))
    return TlsFolder(tmp_path / "pki")


def refusal(check: revocation.CertificateCheck, cert: bytes) -> str:
    with pytest.raises(Unauthenticated) as refused:
        check.check(cert)
    return refused.value.reason


def test_revoked_serials_take_effect_once_the_list_is_looked_at_again(tmp_path: Path) -> None:
    tls = folder_with(tmp_path, "portal:gov", "operator:alice")
    ticks = Ticks()
    check = revocation.CertificateCheck(tls.folder, ticks)
    portal, operator = tls.pair("portal:gov")[1], tls.pair("operator:alice")[1]
    check.check(portal)
    assert revocation.revoke(tls.folder, [portal]) == [x509.load_pem_x509_certificate(portal).serial_number]
    assert revocation.revoke(tls.folder, [portal]) == []  # once is enough
    check.check(portal)  # not looked at yet
    ticks.now += revocation.RELOAD_S
    assert refusal(check, portal) == "CERTIFICATE_REVOKED"
    check.check(operator)
    # A second revocation keeps the first on the list.
    revocation.revoke(tls.folder, [operator])
    ticks.now += revocation.RELOAD_S
    assert refusal(check, operator) == refusal(check, portal) == "CERTIFICATE_REVOKED"


def test_only_certificates_the_ca_issued_itself(tmp_path: Path) -> None:
    tls = folder_with(tmp_path / "a", "portal:gov")
    other = folder_with(tmp_path / "b", "portal:gov")
    check = revocation.CertificateCheck(tls.folder, Ticks())
    assert refusal(check, other.pair("portal:gov")[1]) == "NOT_ISSUED_BY_CA"
    _, chain = forged_chain(tls, "portal:gov", "operator:evil")
    forged = chain.split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    assert pki.participant_of_cert(forged) == "operator:evil"  # it names an operator, but
    assert refusal(check, forged) == "NOT_ISSUED_BY_CA"  # the CA did not issue it
    with pytest.raises(ValueError, match="not issued by this CA"):
        revocation.revoke(tls.folder, [other.pair("portal:gov")[1]])


def test_a_list_not_signed_by_the_ca_is_refused_and_a_new_ca_drops_the_old_list(tmp_path: Path) -> None:
    tls = folder_with(tmp_path / "a", "portal:gov")
    other = folder_with(tmp_path / "b", "portal:gov")
    revocation.revoke(other.folder, [other.pair("portal:gov")[1]])
    shutil.copy(other.folder / "crl.pem", tls.folder / "crl.pem")
    with pytest.raises(ValueError, match="not signed by this CA"):
        revocation.CertificateCheck(tls.folder, Ticks())
    for name in ("ca.pem", "ca.key"):
        (other.folder / name).unlink()
    pki.init_pki(other.folder, ["portal:gov"])  # a fresh CA: the old list means nothing now
    assert not (other.folder / "crl.pem").exists()
    revocation.CertificateCheck(other.folder, Ticks()).check(other.pair("portal:gov")[1])
