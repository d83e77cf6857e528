"""Test PKI of the world: a root CA, an intermediate, and one leaf per host.

Everything is made at `world.py up` time so no key material lives in the
repository.  TLSA association data is computed here too, from the very
certificates the receivers present.
"""

import base64
import datetime
import hashlib
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def new_key(kind):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject, issuer_name, pubkey, not_before, not_after):
    return (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(pubkey)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(pubkey),
                           critical=False))


def make_ca(cn, key, issuer=None, path_len=None):
    """A CA certificate; self-signed when issuer (cert, key) is None."""
    subject = _name(cn)
    issuer_cert, issuer_key = issuer or (None, key)
    issuer_name = issuer_cert.subject if issuer_cert else subject
    b = _builder(subject, issuer_name, key.public_key(),
                 now() - DAY, now() + 3650 * DAY)
    b = b.add_extension(x509.BasicConstraints(ca=True, path_length=path_len),
                        critical=True)
    b = b.add_extension(x509.KeyUsage(
        digital_signature=False, content_commitment=False,
        key_encipherment=False, data_encipherment=False, key_agreement=False,
        key_cert_sign=True, crl_sign=True, encipher_only=False,
        decipher_only=False), critical=True)
    return b.sign(issuer_key, hashes.SHA256())


def make_leaf(names, key, issuer=None, expired=False, days=90):
    """A server certificate for DNS names; self-signed when issuer is None.

    An expired leaf ended 30 days ago: DANE-EE must ignore that (RFC 7672
    §3.1.1), DANE-TA must not (§3.1.2).
    """
    subject = _name(names[0])
    issuer_cert, issuer_key = issuer or (None, key)
    issuer_name = issuer_cert.subject if issuer_cert else subject
    start, end = (now() - 60 * DAY, now() - 30 * DAY) if expired else \
        (now() - DAY, now() + days * DAY)
    b = _builder(subject, issuer_name, key.public_key(), start, end)
    b = b.add_extension(x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in names]), critical=False)
    b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None),
                        critical=True)
    b = b.add_extension(x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def cert_pem(cert):
    return cert.public_bytes(PEM)


def key_pem(key):
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def association(cert, selector, mtype):
    """TLSA certificate association data (hex) per RFC 6698 §2.1.2-2.1.3."""
    if selector == 0:
        data = cert.public_bytes(DER)
    else:
        data = cert.public_key().public_bytes(
            DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if mtype == 1:
        data = hashlib.sha256(data).digest()
    elif mtype == 2:
        data = hashlib.sha512(data).digest()
    return data.hex()


class Pki:
    """The CA pair plus a spare self-signed cert (a "next key" for rollover
    records) and the per-host leaves, written under DIR/certs."""

    def __init__(self, certdir):
        self.dir = certdir
        os.makedirs(certdir, exist_ok=True)
        root_key = new_key("ec")
        self.root = make_ca("danerelay test root CA", root_key)
        inter_key = new_key("ec")
        self.inter = make_ca("danerelay test intermediate CA", inter_key,
                             (self.root, root_key), path_len=0)
        self._keys = {"root": root_key, "inter": inter_key}
        self.spare = make_leaf(["spare.invalid"], new_key("ec"))
        self.leaves = {}
        self._write("ca-root.pem", cert_pem(self.root))
        self._write("ca-inter.pem", cert_pem(self.inter))

    def _write(self, name, data):
        # Private keys 0600 from creation: the relay refuses looser ones.
        mode = 0o600 if name.endswith(".key.pem") else 0o644
        path = os.path.join(self.dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def issue(self, host, spec):
        """Make host's key, leaf and served chain; return (chain, key) paths.

        spec: issuer self|inter|root, names, key ec|rsa, expired,
        expires_in_days (default 90), and
        chain leaf|inter|full (what the server sends after the leaf).
        """
        key = new_key(spec.get("key", "ec"))
        issuer = spec.get("issuer", "inter")
        signer = None if issuer == "self" else \
            (getattr(self, issuer), self._keys[issuer])
        leaf = make_leaf(spec.get("names", [host]), key, signer,
                         spec.get("expired", False),
                         spec.get("expires_in_days", 90))
        self.leaves[host] = leaf
        chain = [leaf] + self._chain_tail(issuer, spec.get("chain"))
        chain_path = os.path.join(self.dir, host + ".chain.pem")
        key_path = os.path.join(self.dir, host + ".key.pem")
        self._write(host + ".chain.pem", b"".join(cert_pem(c) for c in chain))
        self._write(host + ".key.pem", key_pem(key))
        return chain_path, key_path, len(chain)

    def _chain_tail(self, issuer, chain):
        if issuer == "self" or chain == "leaf":
            return []
        if issuer == "root":
            return [self.root] if chain == "full" else []
        return [self.inter, self.root] if chain == "full" else [self.inter]

    def dkim_record(self, selector):
        """A DKIM signing key for SELECTOR (RSA 2048, written as
        certs/dkim-SELECTOR.key.pem), returned as the TXT rdata of its
        _domainkey record, "v=DKIM1; k=rsa; p=..." (RFC 6376 §3.6.1),
        with s=tlsrpt for the selector "tlsrpt" (a key for reports only,
        as RFC 8460 §3 advises), cut in strings of at most 255 octets."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._write("dkim-%s.key.pem" % selector, key_pem(key))
        spki = key.public_key().public_bytes(
            DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        service = "s=tlsrpt; " if selector == "tlsrpt" else ""
        text = "v=DKIM1; k=rsa; %sp=" % service + \
            base64.b64encode(spki).decode()
        return " ".join('"%s"' % text[i:i + 255]
                        for i in range(0, len(text), 255))

    def cert(self, ref):
        """ref: a host name, or @root / @inter / @spare."""
        if ref.startswith("@"):
            return getattr(self, ref[1:])
        return self.leaves[ref]
