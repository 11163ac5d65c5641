"""The Java snippet's KMS TLS and GCP key code, compiled and run with the JDK here.

The Java driver takes KMS TLS as one SSLContext per provider, so the generated class
builds them from the PEM files keyshift.toml names (nested class `Pem`, JDK only). The
driver itself is not installed on these machines, so this test compiles exactly that
generated code (plus `gcpPrivateKey`) into a small harness with javac and proves, against
the test world's KMIP stand-in (PyKMIP, client certificate required, TLS with the test
CA):

- the SSLContext from the CA file and the client certificate + PKCS#8 key completes a
  TLS session that the server keeps open (it accepted the client certificate);
- the same key as an encrypted PKCS#8 ("ENCRYPTED PRIVATE KEY", PBES2/AES-256), opened
  with tlsCertificateKeyFilePassword, does too;
- without the client certificate the server ends the session (so the check can fail);
- gcpPrivateKey turns the service account PEM into exactly the base64 DER
  libmongocrypt wants.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "tests" / "services"
sys.path.insert(0, str(SERVICES))

pytestmark = pytest.mark.timeout(180)

KEYSHIFT = Path(os.environ.get("KEYSHIFT_BIN", ROOT / "target" / "debug" / "keyshift"))

HARNESS = """
public final class Harness {
%(pem)s

%(gcp)s

    public static void main(String[] args) throws Exception {
        if (args[0].equals("gcp")) {
            System.out.print(gcpPrivateKey(Files.readString(Path.of(args[1]))));
            return;
        }
        String[] hostPort = args[1].split(":");
        char[] password = args.length > 4 ? args[4].toCharArray() : null;
        SSLContext context = Pem.sslContext(args[2], args[3].equals("-") ? null : args[3], password);
        try (javax.net.ssl.SSLSocket socket = (javax.net.ssl.SSLSocket) context.getSocketFactory()
                .createSocket(hostPort[0], Integer.parseInt(hostPort[1]))) {
            socket.setSoTimeout(1500);
            socket.startHandshake();
            // A KMIP server that refuses the client certificate ends the session; one that
            // accepts it waits for a request.
            int read = socket.getInputStream().read();
            System.out.println(read < 0 ? "closed" : "data");
        } catch (java.net.SocketTimeoutException waiting) {
            System.out.println("accepted " + waiting.getClass().getSimpleName());
        } catch (java.io.IOException refused) {
            System.out.println("closed " + refused);
        }
    }
}
"""


def _extract(code: str, start: str, indent: str = "    ") -> str:
    """The member of the generated class starting at the line containing `start`, with
    the comment block above it, up to its closing brace at `indent`."""
    lines = code.splitlines()
    i = next(n for n, line in enumerate(lines) if start in line)
    while i > 0 and lines[i - 1].strip().startswith(("/**", "*", "//")):
        i -= 1
    j = next(n for n in range(i, len(lines)) if lines[n] == indent + "}")
    return "\n".join(lines[i:j + 1])


@pytest.fixture(scope="module")
def harness(world, tmp_path_factory):
    if not shutil.which("javac") or not shutil.which("java"):
        pytest.skip("no JDK (javac, java) on this machine")
    if "KS_KMIP_ENDPOINT" not in world:
        pytest.skip("this world has no KMIP stand-in")
    if not KEYSHIFT.exists():
        pytest.skip(f"{KEYSHIFT} is not built (cargo build -p keyshift, or set KEYSHIFT_BIN)")
    out = tmp_path_factory.mktemp("java") / "deploy"
    subprocess.run([sys.executable, str(SERVICES / "seed.py"), "--out", str(out), "--keys", "1", "--docs", "1",
                    "--target", "kmip", "--key-vault", f"java_{os.getpid()}_kv.__keyVault",
                    "--db", f"java_{os.getpid()}"], check=True, capture_output=True)
    done = subprocess.run([str(KEYSHIFT), "snippet", "--lang", "java", "--stage", "final"], cwd=out,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    code = done.stdout
    # The generated code builds the KMIP SSLContext from the world's PEM files itself.
    assert (f'contexts.put("kmip", Pem.sslContext("{world["KS_KMIP_CA_FILE"]}", '
            f'"{world["KS_KMIP_CLIENT_CERT"]}", null));') in code
    assert ".kmsProviderSslContextMap(kmsSslContexts())" in code
    imports = "\n".join(line for line in code.splitlines() if re.match(r"import javax?\.", line))
    source = imports + "\n" + HARNESS % {
        "pem": _extract(code, "static final class Pem {"),
        "gcp": _extract(code, "static String gcpPrivateKey("),
    }
    build = out / "harness"
    build.mkdir()
    (build / "Harness.java").write_text(source)
    compiled = subprocess.run(["javac", "-Xlint:all", "-Werror", "-d", str(build), str(build / "Harness.java")],
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr + "\n" + source
    return build


def _java(build: Path, *args: str) -> str:
    done = subprocess.run(["java", "-cp", str(build), "Harness", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_kmip_tls_from_pem_files_is_accepted(world, harness):
    result = _java(harness, "tls", world["KS_KMIP_ENDPOINT"], world["KS_KMIP_CA_FILE"], world["KS_KMIP_CLIENT_CERT"])
    assert result.startswith("accepted"), result


def test_kmip_tls_with_an_encrypted_pkcs8_key_and_its_password(world, harness, tmp_path):
    key = serialization.load_pem_private_key(Path(world["KS_KMIP_CLIENT_KEY_PEM"]).read_bytes(), None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"s3cret pass"))
    assert b"ENCRYPTED PRIVATE KEY" in encrypted
    bundle = tmp_path / "client-encrypted.pem"
    bundle.write_bytes(encrypted + Path(world["KS_KMIP_CLIENT_CERT_PEM"]).read_bytes())
    result = _java(harness, "tls", world["KS_KMIP_ENDPOINT"], world["KS_KMIP_CA_FILE"], str(bundle), "s3cret pass")
    assert result.startswith("accepted"), result


def test_kmip_tls_without_the_client_certificate_is_refused(world, harness):
    result = _java(harness, "tls", world["KS_KMIP_ENDPOINT"], world["KS_KMIP_CA_FILE"], "-")
    assert result.startswith("closed"), result


def test_gcp_private_key_from_pem_is_the_base64_der(world, harness):
    if "KS_GCP_PRIVATE_KEY_FILE" not in world:
        pytest.skip("this world has no GCP stand-in")
    assert _java(harness, "gcp", world["KS_GCP_PRIVATE_KEY_FILE"]) == world["KS_GCP_PRIVATE_KEY"]
