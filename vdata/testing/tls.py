"""Self-signed certificates for TLS tests, made with the ``openssl`` command.

``make_test_certs(directory)`` writes a throwaway certificate authority and a
server certificate signed by it, valid for ``DNS:localhost`` and
``IP:127.0.0.1`` (so ``sslmode=verify-full`` passes for both names and fails
for any other). Nothing here is fit for production: keys are unencrypted and
the CA is created on the fly.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SslFiles", "TestCerts", "make_test_certs"]


@dataclass(frozen=True, slots=True)
class SslFiles:
    """The files a TLS-enabled PostgreSQL server needs.

    ``cert`` and ``key`` are the server's certificate and private key (PEM);
    ``ca``, when given, becomes the server's ``ssl_ca_file`` (used to verify
    client certificates).
    """

    cert: Path
    key: Path
    ca: Path | None = None


@dataclass(frozen=True, slots=True)
class TestCerts:
    """What ``make_test_certs`` wrote: the CA a client verifies with, and the server files."""

    __test__ = False  # not a pytest test class despite the name

    ca_cert: Path
    ca_key: Path
    server: SslFiles


def _openssl(*args: str, cwd: Path) -> None:
    """Run ``openssl`` with ``args``; raise ``RuntimeError`` with its output on failure."""
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("the openssl command is not on PATH; it is needed to make test certs")
    proc = subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed ({proc.returncode}): {proc.stderr.strip()}")


def make_test_certs(
    directory: str | Path,
    *,
    dns_names: tuple[str, ...] = ("localhost",),
    ip_addresses: tuple[str, ...] = ("127.0.0.1",),
    days: int = 2,
) -> TestCerts:
    """Write a throwaway CA and a server certificate signed by it into ``directory``.

    The server certificate's subjectAltName lists ``dns_names`` and
    ``ip_addresses``. Returns the paths; keys are written with mode 600.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = out / "ca.key", out / "ca.crt"
    key, csr, cert = out / "server.key", out / "server.csr", out / "server.crt"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-days", str(days), "-subj", "/CN=vdata test CA",
        "-keyout", str(ca_key), "-out", str(ca_cert),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=out,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-subj", f"/CN={dns_names[0] if dns_names else 'vdata-test'}",
        "-keyout", str(key), "-out", str(csr),
        cwd=out,
    )  # fmt: skip
    san = ",".join([f"DNS:{n}" for n in dns_names] + [f"IP:{ip}" for ip in ip_addresses])
    ext = out / "server.ext"
    ext.write_text(
        f"subjectAltName={san}\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n",
        encoding="ascii",
    )
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", str(days), "-sha256", "-extfile", str(ext),
        "-out", str(cert),
        cwd=out,
    )  # fmt: skip
    for k in (ca_key, key):
        k.chmod(0o600)
    return TestCerts(ca_cert=ca_cert, ca_key=ca_key, server=SslFiles(cert=cert, key=key))
