"""The KMS stand-ins answer like the real services: success, refusals, knobs, faults.

Each stand-in is exercised two ways: over plain HTTP(S) with `requests`/`boto3`, to pin
status codes and error body shapes the real services use, and through libmongocrypt
(kms_oracle.MemVault, no database needed) to prove the official client library accepts
what it serves. Tests use the running world (`world` fixture) and leave it as they found
it: knobs are applied to keys created for the test, faults are cleared afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import time
import uuid
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kms_oracle import MemVault, memvault_tls, world_providers

pytestmark = pytest.mark.timeout(120)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def ca(world):
    return world["KS_CA_FILE"]


def _post(url, ca, **kw):
    return requests.post(url, verify=ca, timeout=30, **kw)


def _vault(world, provider: str, via_proxy: bool = False) -> tuple[MemVault, dict, dict]:
    providers, tls, keys = world_providers(world, via_proxy)
    vault = MemVault({"local": {"key": os.urandom(96)}, provider: providers[provider]},
                     memvault_tls({provider: tls[provider]}))
    return vault, providers, keys


# ===================================================================== Azure Key Vault


def _azure_token(world, ca, **overrides) -> requests.Response:
    form = {"client_id": world["KS_AZURE_CLIENT_ID"], "client_secret": world["KS_AZURE_CLIENT_SECRET"],
            "scope": "https://vault.azure.net/.default", "grant_type": "client_credentials"}
    tenant = overrides.pop("tenant", world["KS_AZURE_TENANT_ID"])
    form.update(overrides)
    return _post(f"https://{world['KS_AZURE_IDENTITY_ENDPOINT']}/{tenant}/oauth2/v2.0/token", ca, data=form)


def _azure_wrap(world, ca, token, name=None, version=None, op="wrapkey", value=b"k" * 96):
    name = name or world["KS_AZURE_KEY_NAME"]
    version = world["KS_AZURE_KEY_VERSION"] if version is None else version
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return _post(f"https://{world['KS_AZURE_VAULT_ENDPOINT']}/keys/{name}/{version}/{op}?api-version=7.1", ca,
                 json={"alg": "RSA-OAEP-256", "value": _b64url(value)}, headers=headers)


def test_azure_serves_each_request_of_a_kept_alive_connection_with_its_own_body(world, ca):
    """keyshift reuses KMS connections: the second request on one connection must not
    see the first one's body (a token request, then a wrap and an unwrap)."""
    with requests.Session() as s:
        form = {"client_id": world["KS_AZURE_CLIENT_ID"], "client_secret": world["KS_AZURE_CLIENT_SECRET"],
                "scope": "https://vault.azure.net/.default", "grant_type": "client_credentials"}
        url = f"https://{world['KS_AZURE_IDENTITY_ENDPOINT']}/{world['KS_AZURE_TENANT_ID']}/oauth2/v2.0/token"
        bad = s.post(url, data={**form, "client_secret": "wrong"}, timeout=30, verify=ca)
        assert bad.status_code == 401, bad.text
        good = s.post(url, data=form, timeout=30, verify=ca)
        assert good.status_code == 200, good.text
        token = good.json()["access_token"]
        vault = (f"https://{world['KS_AZURE_VAULT_ENDPOINT']}/keys/{world['KS_AZURE_KEY_NAME']}/"
                 f"{world['KS_AZURE_KEY_VERSION']}")
        headers = {"Authorization": f"Bearer {token}"}
        w = s.post(f"{vault}/wrapkey?api-version=7.1", json={"alg": "RSA-OAEP-256", "value": _b64url(b"a" * 96)},
                   headers=headers, timeout=30, verify=ca)
        assert w.status_code == 200, w.text
        u = s.post(f"{vault}/unwrapkey?api-version=7.1", json={"alg": "RSA-OAEP-256", "value": w.json()["value"]},
                   headers=headers, timeout=30, verify=ca)
        assert u.status_code == 200, u.text
        assert base64.urlsafe_b64decode(u.json()["value"] + "==") == b"a" * 96


def _azure_ctl(world, ca, what, **doc):
    r = _post(f"{world['KS_AZURE_CONTROL_URL']}/{what}", ca, json=doc)
    assert r.status_code == 200, r.text
    return r.json()


def _aad_error_shape(body: dict, error: str, code: int) -> None:
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}:")
    for field in ("timestamp", "trace_id", "correlation_id", "error_uri"):
        assert field in body


def test_azure_token_and_wrap_roundtrip(world, ca):
    r = _azure_token(world, ca)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and isinstance(body["expires_in"], int)
    token = body["access_token"]
    w = _azure_wrap(world, ca, token)
    assert w.status_code == 200, w.text
    wrapped = w.json()
    assert wrapped["kid"].endswith(f"/keys/{world['KS_AZURE_KEY_NAME']}/{world['KS_AZURE_KEY_VERSION']}")
    raw = base64.urlsafe_b64decode(wrapped["value"] + "=" * (-len(wrapped["value"]) % 4))
    assert len(raw) == 256  # RSA-2048
    u = _azure_wrap(world, ca, token, op="unwrapkey", value=raw)
    assert u.status_code == 200, u.text
    assert base64.urlsafe_b64decode(u.json()["value"] + "==") == b"k" * 96


def test_azure_rejects_wrong_client_secret(world, ca):
    r = _azure_token(world, ca, client_secret="not-the-secret")
    assert r.status_code == 401
    _aad_error_shape(r.json(), "invalid_client", 7000215)


def test_azure_rejects_unknown_tenant_and_client(world, ca):
    r = _azure_token(world, ca, tenant=str(uuid.uuid4()))
    assert r.status_code == 400
    _aad_error_shape(r.json(), "invalid_request", 90002)
    r = _azure_token(world, ca, client_id=str(uuid.uuid4()))
    assert r.status_code == 400
    _aad_error_shape(r.json(), "unauthorized_client", 700016)


@pytest.mark.parametrize("token", [None, "not-a-token", "forged"])
def test_azure_rejects_missing_or_wrong_token(world, ca, token):
    if token == "forged":  # a well-formed token with a signature the vault did not make
        good = _azure_token(world, ca).json()["access_token"]
        head, claims, _sig = good.split(".")
        token = f"{head}.{claims}.{_b64url(os.urandom(32))}"
    r = _azure_wrap(world, ca, token)
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == "Unauthorized" and err["message"].startswith("AKV")
    assert r.headers["WWW-Authenticate"].startswith("Bearer authorization=")


def test_azure_rejects_wrong_key_name_and_version(world, ca):
    token = _azure_token(world, ca).json()["access_token"]
    r = _azure_wrap(world, ca, token, name="no-such-key")
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "KeyNotFound" and "no-such-key" in err["message"]
    r = _azure_wrap(world, ca, token, version="0" * 32)
    assert r.status_code == 404 and r.json()["error"]["code"] == "KeyNotFound"


def test_azure_unwrap_of_garbage_is_bad_parameter(world, ca):
    token = _azure_token(world, ca).json()["access_token"]
    r = _azure_wrap(world, ca, token, op="unwrapkey", value=os.urandom(256))
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadParameter"


def test_azure_knobs_deny_disable_revoke(world, ca):
    name = f"knob-{uuid.uuid4().hex[:8]}"
    version = _azure_ctl(world, ca, "keys", name=name)["version"]
    token = _azure_token(world, ca).json()["access_token"]
    assert _azure_wrap(world, ca, token, name=name, version=version).status_code == 200
    _azure_ctl(world, ca, "deny", name=name, op="wrapkey")
    r = _azure_wrap(world, ca, token, name=name, version=version)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "Forbidden" and r.json()["error"]["innererror"]["code"] == "AccessDenied"
    _azure_ctl(world, ca, "allow", name=name, op="wrapkey")
    _azure_ctl(world, ca, "disable", name=name)
    r = _azure_wrap(world, ca, token, name=name, version=version)
    assert r.status_code == 403 and r.json()["error"]["innererror"]["code"] == "KeyDisabled"
    _azure_ctl(world, ca, "enable", name=name)
    assert _azure_wrap(world, ca, token, name=name, version=version).status_code == 200


def test_azure_imds(world, ca):
    url = world["KS_AZURE_IMDS_URL"] + "?api-version=2018-02-01&resource=https://vault.azure.net"
    r = requests.get(url, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = requests.get(url, headers={"Metadata": "true"}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["resource"] == "https://vault.azure.net"
    assert isinstance(body["expires_in"], str) and int(body["expires_in"]) > 60  # IMDS sends strings
    assert _azure_wrap(world, ca, body["access_token"]).status_code == 200


def test_azure_through_libmongocrypt_wrong_secret(world):
    vault, providers, keys = _vault(world, "azure")
    key_id = vault.create_data_key("local")
    ct = vault.encrypt("azure", key_id)
    assert vault.rewrap({}, "azure", keys["azure"]) == 1
    bad = dict(providers["azure"], clientSecret="wrong")
    other = vault.with_providers({"azure": bad}, memvault_tls(world_providers(world)[1]))
    with pytest.raises(Exception, match="invalid_client"):
        other.decrypt(ct)
    good = vault.with_providers({"azure": providers["azure"]}, memvault_tls(world_providers(world)[1]))
    assert good.decrypt(ct) == "azure"


# ===================================================================== Google Cloud KMS


def _gcp_jwt(world, *, key=None, iss=None, aud=None, iat=None, exp=None,
             scope="https://www.googleapis.com/auth/cloudkms") -> str:
    if key is None:
        key = serialization.load_pem_private_key(open(world["KS_GCP_PRIVATE_KEY_FILE"], "rb").read(), None)
    now = int(time.time())
    head = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = _b64url(json.dumps({
        "iss": iss or world["KS_GCP_EMAIL"], "aud": aud or f"https://{world['KS_GCP_ENDPOINT']}/token",
        "scope": scope, "iat": iat if iat is not None else now, "exp": exp if exp is not None else now + 300,
    }).encode())
    sig = key.sign(f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{claims}.{_b64url(sig)}"


def _gcp_token(world, ca, assertion) -> requests.Response:
    return _post(f"https://{world['KS_GCP_ENDPOINT']}/token", ca,
                 data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})


def _gcp_key_url(world, name=None, version=None) -> str:
    path = (f"projects/{world['KS_GCP_PROJECT_ID']}/locations/{world['KS_GCP_LOCATION']}/keyRings/"
            f"{world['KS_GCP_KEY_RING']}/cryptoKeys/{name or world['KS_GCP_KEY_NAME']}")
    if version:
        path += f"/cryptoKeyVersions/{version}"
    return f"https://{world['KS_GCP_KMS_ENDPOINT']}/v1/{path}"


def _gcp_call(world, ca, token, op, doc, name=None, version=None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return _post(f"{_gcp_key_url(world, name, version)}:{op}", ca, json=doc, headers=headers)


def _gcp_ctl(world, ca, what, **doc):
    r = _post(f"{world['KS_GCP_CONTROL_URL']}/{what}", ca, json=doc)
    assert r.status_code == 200, r.text
    return r.json()


def _rpc_error(r: requests.Response, code: int, status: str) -> dict:
    assert r.status_code == code, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["status"] == status and err["message"]
    return err


@pytest.fixture(scope="module")
def gcp_token(world, ca):
    r = _gcp_token(world, ca, _gcp_jwt(world))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and isinstance(body["expires_in"], int)
    return body["access_token"]


def test_gcp_encrypt_decrypt_roundtrip(world, ca, gcp_token):
    pt = base64.b64encode(b"d" * 96).decode()
    r = _gcp_call(world, ca, gcp_token, "encrypt", {"plaintext": pt})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"].endswith(f"cryptoKeys/{world['KS_GCP_KEY_NAME']}/cryptoKeyVersions/1")
    d = _gcp_call(world, ca, gcp_token, "decrypt", {"ciphertext": body["ciphertext"]})
    assert d.status_code == 200 and d.json()["plaintext"] == pt
    # a ciphertext is bound to its key: another key cannot decrypt it
    d = _gcp_call(world, ca, gcp_token, "decrypt", {"ciphertext": body["ciphertext"]}, name=world["KS_GCP_KEY_NAME_2"])
    _rpc_error(d, 400, "INVALID_ARGUMENT")


def test_gcp_rejects_bad_jwt_signature(world, ca):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = _gcp_token(world, ca, _gcp_jwt(world, key=other))
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}


def test_gcp_rejects_unknown_account_stale_jwt_and_wrong_audience(world, ca):
    r = _gcp_token(world, ca, _gcp_jwt(world, iss="nobody@keyshift-test.iam.gserviceaccount.com"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    old = int(time.time()) - 7200
    r = _gcp_token(world, ca, _gcp_jwt(world, iat=old, exp=old + 300))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert "iat and exp" in r.json()["error_description"]
    r = _gcp_token(world, ca, _gcp_jwt(world, aud="https://example.com/token"))
    assert r.status_code == 400 and "audience" in r.json()["error_description"]


@pytest.mark.parametrize("token", [None, "ya29.not-a-token", "forged"])
def test_gcp_rejects_missing_or_wrong_token(world, ca, gcp_token, token):
    if token == "forged":
        head, claims, _sig = gcp_token.split(".", 1)[1].split(".")
        token = f"ya29.{head}.{claims}.{_b64url(os.urandom(32))}"
    r = _gcp_call(world, ca, token, "encrypt", {"plaintext": base64.b64encode(b"x").decode()})
    err = _rpc_error(r, 401, "UNAUTHENTICATED")
    assert err["message"].startswith("Request had invalid authentication credentials.")


def test_gcp_rejects_wrong_key_name(world, ca, gcp_token):
    r = _gcp_call(world, ca, gcp_token, "encrypt", {"plaintext": "eA=="}, name="no-such-key")
    err = _rpc_error(r, 404, "NOT_FOUND")
    assert "cryptoKeys/no-such-key" in err["message"]
    r = _gcp_call(world, ca, gcp_token, "encrypt", {"plaintext": "eA=="}, version="99")
    _rpc_error(r, 404, "NOT_FOUND")
    r = _gcp_call(world, ca, gcp_token, "decrypt", {"ciphertext": base64.b64encode(os.urandom(64)).decode()})
    _rpc_error(r, 400, "INVALID_ARGUMENT")


def test_gcp_knobs_deny_disable(world, ca, gcp_token):
    name = f"knob-{uuid.uuid4().hex[:8]}"
    _gcp_ctl(world, ca, "keys", name=name)
    ct = _gcp_call(world, ca, gcp_token, "encrypt", {"plaintext": "eA=="}, name=name).json()["ciphertext"]
    _gcp_ctl(world, ca, "deny", name=name, op="decrypt")
    err = _rpc_error(_gcp_call(world, ca, gcp_token, "decrypt", {"ciphertext": ct}, name=name), 403, "PERMISSION_DENIED")
    assert "cloudkms.cryptoKeyVersions.useToDecrypt" in err["message"]
    _gcp_ctl(world, ca, "allow", name=name, op="decrypt")
    _gcp_ctl(world, ca, "disable", name=name, version="1")
    err = _rpc_error(_gcp_call(world, ca, gcp_token, "decrypt", {"ciphertext": ct}, name=name), 400, "FAILED_PRECONDITION")
    assert "DISABLED" in err["message"]
    _gcp_ctl(world, ca, "enable", name=name)
    assert _gcp_call(world, ca, gcp_token, "decrypt", {"ciphertext": ct}, name=name).status_code == 200


def test_gcp_metadata_server(world, ca):
    url = world["KS_GCP_METADATA_URL"]
    r = requests.get(url, timeout=10)
    assert r.status_code == 403 and "Metadata-Flavor" in r.text
    r = requests.get(url, headers={"Metadata-Flavor": "Google"}, timeout=10)
    assert r.status_code == 200 and r.headers["Metadata-Flavor"] == "Google"
    token = r.json()["access_token"]
    assert _gcp_call(world, ca, token, "encrypt", {"plaintext": "eA=="}).status_code == 200


def test_gcp_through_libmongocrypt_bad_key(world):
    vault, providers, keys = _vault(world, "gcp")
    vault.create_data_key("local")
    with pytest.raises(Exception, match="NOT_FOUND"):
        vault.rewrap({}, "gcp", dict(keys["gcp"], keyName="no-such-key"))
    wrong_sa = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    bad = vault.with_providers({"local": vault.kms_providers["local"],
                                "gcp": dict(providers["gcp"], privateKey=base64.b64encode(wrong_sa).decode())},
                               memvault_tls(world_providers(world)[1]))
    with pytest.raises(Exception, match="Invalid JWT Signature"):
        bad.rewrap({}, "gcp", keys["gcp"])


# ===================================================================== AWS KMS (moto)


@pytest.fixture(scope="module")
def kms(world, ca):
    import boto3
    from botocore.config import Config

    return boto3.client("kms", region_name=world["KS_AWS_REGION"], endpoint_url=world["KS_AWS_URL"], verify=ca,
                        aws_access_key_id=world["KS_AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=world["KS_AWS_SECRET_ACCESS_KEY"],
                        config=Config(retries={"max_attempts": 1}))


def _aws_error(excinfo) -> tuple[str, str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_aws_deny_knob(world, ca, kms):
    from botocore.exceptions import ClientError

    key = _post(f"{world['KS_AWS_CONTROL_URL']}/create", ca, json={}).json()
    blob = kms.encrypt(KeyId=key["arn"], Plaintext=b"p" * 96)["CiphertextBlob"]
    assert _post(f"{world['KS_AWS_CONTROL_URL']}/deny", ca, json={"keyId": key["arn"], "action": "Decrypt"}).ok
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob)
    code, msg, status = _aws_error(e)
    assert (code, status) == ("AccessDeniedException", 400)
    assert msg.startswith("User: arn:aws:iam::") and "is not authorized to perform: kms:Decrypt" in msg
    kms.encrypt(KeyId=key["keyId"], Plaintext=b"p")  # Encrypt is still allowed
    _post(f"{world['KS_AWS_CONTROL_URL']}/deny", ca, json={"keyId": key["keyId"], "action": "Encrypt"})
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key["arn"], Plaintext=b"p")
    assert _aws_error(e)[0] == "AccessDeniedException" and f"on resource: {key['arn']}" in _aws_error(e)[1]
    for action in ("Encrypt", "Decrypt"):
        _post(f"{world['KS_AWS_CONTROL_URL']}/allow", ca, json={"keyId": key["keyId"], "action": action})
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p" * 96


def test_aws_armed_faults_fire_after_a_count_of_requests(world, ca, kms):
    """deny/disable with "after": N let exactly N more requests through, then fail."""
    from botocore.exceptions import ClientError

    control = world["KS_AWS_CONTROL_URL"]
    key = _post(f"{control}/create", ca, json={}).json()
    blob = kms.encrypt(KeyId=key["arn"], Plaintext=b"p" * 96)["CiphertextBlob"]
    armed = _post(f"{control}/deny", ca, json={"keyId": key["arn"], "action": "Encrypt", "after": 2})
    assert armed.json()["armed"] == "deny"
    kms.decrypt(CiphertextBlob=blob)  # a Decrypt does not count against an Encrypt deny
    for _ in range(2):
        kms.encrypt(KeyId=key["arn"], Plaintext=b"p")
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key["arn"], Plaintext=b"p")
    assert _aws_error(e)[0] == "AccessDeniedException"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p" * 96
    _post(f"{control}/allow", ca, json={"keyId": key["keyId"], "action": "Encrypt"})

    _post(f"{control}/disable", ca, json={"keyId": key["keyId"], "after": 1, "counting": "Decrypt"})
    kms.encrypt(KeyId=key["arn"], Plaintext=b"p")  # not counted
    kms.decrypt(CiphertextBlob=blob)  # the one let through
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob)
    assert _aws_error(e)[0] == "DisabledException"
    assert _post(f"{control}/enable", ca, json={"keyId": key["keyId"]}).ok
    assert _post(f"{control}/deny", ca, json={"keyId": key["keyId"], "after": -1}).status_code == 400
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p" * 96


def test_aws_reencrypt_is_served_counted_and_authorized_as_aws_does(world, ca, kms):
    from botocore.exceptions import ClientError

    control = world["KS_AWS_CONTROL_URL"]
    a = _post(f"{control}/create", ca, json={}).json()
    b = _post(f"{control}/create", ca, json={}).json()
    blob = kms.encrypt(KeyId=a["arn"], Plaintext=b"d" * 96)["CiphertextBlob"]
    before = _post(f"{control}/state", ca).json()["counters"]
    out = kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=b["arn"])
    assert out["KeyId"] == b["arn"] and out["SourceKeyId"] == a["arn"]
    after = _post(f"{control}/state", ca).json()["counters"]
    assert after.get("ReEncrypt", 0) - before.get("ReEncrypt", 0) == 1
    assert after.get("Decrypt", 0) == before.get("Decrypt", 0), "a ReEncrypt is not counted as a Decrypt"
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"d" * 96
    for key, action in ((b, "ReEncryptTo"), (a, "ReEncryptFrom")):
        _post(f"{control}/deny", ca, json={"keyId": key["arn"], "action": action})
        with pytest.raises(ClientError) as e:
            kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=b["arn"])
        assert _aws_error(e)[0] == "AccessDeniedException" and f"kms:{action}" in _aws_error(e)[1]
        _post(f"{control}/allow", ca, json={"keyId": key["arn"], "action": action})


def test_aws_throttle_knob_answers_throttling_exception_above_the_rate(world, ca, kms):
    from botocore.exceptions import ClientError

    control = world["KS_AWS_CONTROL_URL"]
    key = _post(f"{control}/create", ca, json={}).json()
    assert _post(f"{control}/throttle", ca, json={"rate": 1}).ok
    try:
        throttled = None
        for _ in range(20):  # two requests within a second is all it takes
            try:
                kms.encrypt(KeyId=key["arn"], Plaintext=b"p")
            except ClientError as e:
                throttled = e
                break
        assert throttled is not None
        assert (throttled.response["Error"]["Code"], throttled.response["ResponseMetadata"]["HTTPStatusCode"]) == \
            ("ThrottlingException", 400)
        rate = _post(f"{control}/state", ca).json()["rate"]
        assert rate["limit"] == 1 and rate["maxAcceptedPerSecond"] == 1 and rate["maxOfferedPerSecond"] >= 2
    finally:
        assert _post(f"{control}/throttle", ca, json={"rate": 0}).ok
    kms.encrypt(KeyId=key["arn"], Plaintext=b"p")
    assert _post(f"{control}/throttle", ca, json={"rate": -1}).status_code == 400


def test_aws_disabled_key(world, ca, kms):
    from botocore.exceptions import ClientError

    key = kms.create_key(Description="disable test")["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["Arn"], Plaintext=b"p" * 96)["CiphertextBlob"]
    kms.disable_key(KeyId=key["KeyId"])  # moto's own DisableKey
    for call in (lambda: kms.encrypt(KeyId=key["Arn"], Plaintext=b"p"), lambda: kms.decrypt(CiphertextBlob=blob)):
        with pytest.raises(ClientError) as e:
            call()
        assert _aws_error(e) == ("DisabledException", f"{key['Arn']} is disabled.", 400)
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p" * 96


def test_aws_rejects_bad_credentials(world, ca):
    import boto3
    from botocore.exceptions import ClientError

    for akid, secret, code in [(world["KS_AWS_ACCESS_KEY_ID"], "wrong", "InvalidSignatureException"),
                               ("AKIAUNKNOWNUNKNOWN00", "x", "UnrecognizedClientException")]:
        bad = boto3.client("kms", region_name="us-east-1", endpoint_url=world["KS_AWS_URL"], verify=ca,
                           aws_access_key_id=akid, aws_secret_access_key=secret)
        with pytest.raises(ClientError) as e:
            bad.encrypt(KeyId=world["KS_AWS_KEY_ARN"], Plaintext=b"p")
        assert _aws_error(e)[0] == code and _aws_error(e)[2] == 400


def test_aws_through_libmongocrypt_denied(world, ca):
    vault, providers, keys = _vault(world, "aws")
    key = _post(f"{world['KS_AWS_CONTROL_URL']}/create", ca, json={}).json()
    vault.create_data_key("local")
    _post(f"{world['KS_AWS_CONTROL_URL']}/deny", ca, json={"keyId": key["keyId"], "action": "Encrypt"})
    with pytest.raises(Exception, match="AccessDeniedException"):
        vault.rewrap({}, "aws", dict(keys["aws"], key=key["arn"]))
    assert vault.rewrap({}, "aws", keys["aws"]) == 1


# ===================================================================== KMIP


def _kmip_addr(world):
    host, port = world["KS_KMIP_ENDPOINT"].rsplit(":", 1)
    return host, int(port)


def test_kmip_requires_client_certificate(world):
    ctx = ssl.create_default_context(cafile=world["KS_KMIP_CA_FILE"])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        with socket.create_connection(_kmip_addr(world), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"\x42\x00\x78\x01\x00\x00\x00\x00")  # start of a KMIP request
                if not s.recv(1):
                    raise ConnectionError("closed")


def test_kmip_negotiates_ecdhe_ecdsa_gcm(world):
    ctx = ssl.create_default_context(cafile=world["KS_KMIP_CA_FILE"])
    ctx.load_cert_chain(world["KS_KMIP_CLIENT_CERT"])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305")
    with socket.create_connection(_kmip_addr(world), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            name, version, _ = s.cipher()
            assert version == "TLSv1.2" and name.startswith("ECDHE-ECDSA-") and "GCM" in name


@pytest.mark.parametrize("master_key", [{}, {"delegated": True}], ids=["plain", "delegated"])
def test_kmip_through_libmongocrypt(world, master_key):
    vault, providers, _ = _vault(world, "kmip")
    key_id = vault.create_data_key("local")
    ct = vault.encrypt("kmip", key_id, deterministic=False)
    assert vault.rewrap({}, "kmip", master_key) == 1
    doc = next(iter(vault.keys.values()))
    assert doc["masterKey"]["provider"] == "kmip" and doc["masterKey"].get("delegated", False) == bool(master_key)
    other = vault.with_providers({"kmip": providers["kmip"]}, memvault_tls({"kmip": world_providers(world)[1]["kmip"]}))
    assert other.decrypt(ct) == "kmip"


# ===================================================================== fault proxy


class Proxy:
    def __init__(self, world):
        self.url = world["KS_PROXY_CONTROL"]

    def post(self, path, doc=None):
        r = requests.post(self.url + path, json=doc or {}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def counters(self):
        return requests.get(self.url + "/counters", timeout=10).json()


@pytest.fixture()
def proxy(world):
    p = Proxy(world)
    p.post("/clear")
    yield p
    p.post("/clear")


def _delta(before, after, upstream, name):
    return after[upstream][name] - before[upstream][name]


def _aws_post_via_proxy(world, ca, timeout=15):
    return requests.post(f"https://{world['KS_PROXY_AWS_ENDPOINT']}/", verify=ca, timeout=timeout,
                         headers={"X-Amz-Target": "TrentService.ListKeys",
                                  "Content-Type": "application/x-amz-json-1.1"}, data=b"{}")


def test_proxy_http_faults_shapes_and_counters(world, ca, proxy):
    before = proxy.counters()
    # with a delay, the ClientHello is already buffered when the proxy takes over TLS
    proxy.post("/faults", {"upstream": "aws", "next": ["http503", "throttle", "http500"], "delay_ms": 50})
    r = _aws_post_via_proxy(world, ca)
    assert r.status_code == 503
    r = _aws_post_via_proxy(world, ca)
    assert r.status_code == 400 and r.json()["__type"] == "ThrottlingException"
    r = _aws_post_via_proxy(world, ca)
    assert r.status_code == 500 and r.json()["__type"] == "KMSInternalException"
    r = _aws_post_via_proxy(world, ca)  # next list used up, no rates: passes through to moto
    assert r.status_code == 400 and r.json()["__type"] == "MissingAuthenticationTokenException"
    after = proxy.counters()
    for name in ("http503", "throttle", "http500", "passed"):
        assert _delta(before, after, "aws", name) == 1, name

    proxy.post("/faults", {"upstream": "azure", "next": ["throttle"]})
    r = _post(f"https://{world['KS_PROXY_AZURE_VAULT_ENDPOINT']}/keys/x/y/wrapkey?api-version=7.1", ca, json={})
    assert r.status_code == 429 and r.json()["error"]["code"] == "Throttled"
    proxy.post("/faults", {"upstream": "gcp", "next": ["throttle", "http503"]})
    r = _post(f"https://{world['KS_PROXY_GCP_KMS_ENDPOINT']}/v1/x:encrypt", ca, json={})
    assert r.status_code == 429 and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    r = _post(f"https://{world['KS_PROXY_GCP_KMS_ENDPOINT']}/v1/x:encrypt", ca, json={})
    assert r.status_code == 503 and r.json()["error"]["status"] == "UNAVAILABLE"


def test_proxy_reset_stall_delay(world, ca, proxy):
    before = proxy.counters()
    proxy.post("/faults", {"upstream": "aws", "next": ["reset"]})
    with pytest.raises(requests.exceptions.ConnectionError):
        _aws_post_via_proxy(world, ca)
    proxy.post("/faults", {"upstream": "aws", "next": ["stall"], "stall_ms": 5000})
    started = time.monotonic()
    with pytest.raises((requests.exceptions.Timeout, requests.exceptions.ConnectionError)):
        _aws_post_via_proxy(world, ca, timeout=0.5)
    assert time.monotonic() - started < 5
    proxy.post("/faults", {"upstream": "aws", "delay_ms": 300})
    started = time.monotonic()
    _aws_post_via_proxy(world, ca)
    assert time.monotonic() - started >= 0.3
    after = proxy.counters()
    assert _delta(before, after, "aws", "reset") == 1
    assert _delta(before, after, "aws", "stall") == 1
    assert _delta(before, after, "aws", "delayed") >= 1


def test_proxy_latency_counts_round_trips_per_connection_and_per_request(world, ca, proxy):
    """rtt_ms holds every flight, so a fresh TLS 1.3 connection costs 3 round trips
    (TCP, handshake, request) and a kept-alive one 1; the proxy counts them."""
    proxy.post("/faults", {"upstream": "aws", "rtt_ms": 40})
    host, port = world["KS_PROXY_AWS_ENDPOINT"].rsplit(":", 1)
    request = (b"POST / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nX-Amz-Target: TrentService.ListKeys\r\n"
               b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{}")

    def exchange(s):
        s.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += s.recv(65536)
        head, _, body = reply.partition(b"\r\n\r\n")
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
        while len(body) < length:
            body += s.recv(65536)
        assert head.startswith(b"HTTP/1.1 400")  # unsigned: moto refuses, which is enough here

    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    before = proxy.counters()
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            for _ in range(3):
                exchange(s)
    one_connection = time.monotonic() - started
    middle = proxy.counters()
    assert _delta(before, middle, "aws", "connections") == 1
    assert _delta(before, middle, "aws", "round_trips") == 3 + 2, "3 for the first request, 1 per reuse"
    # The latency is real: 5 round trips of 40 ms cannot take less than 200 ms.
    assert one_connection >= 0.2
    for _ in range(2):
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                exchange(s)
    after = proxy.counters()
    assert _delta(middle, after, "aws", "connections") == 2
    assert _delta(middle, after, "aws", "round_trips") == 6, "3 per fresh connection"


def test_proxy_passes_tls_through(world, ca, proxy):
    """Passed-through connections see the stand-in's certificate; HTTP faults the proxy's own."""
    host, port = world["KS_PROXY_AZURE_VAULT_ENDPOINT"].rsplit(":", 1)

    def peer_cn():
        ctx = ssl.create_default_context(cafile=ca)
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
                s.sendall(b"GET /__ks/state HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                s.recv(1)
                return cn

    assert peer_cn() == "azure"
    proxy.post("/faults", {"upstream": "azure", "next": ["http500"]})
    assert peer_cn() == "proxy"


def test_proxy_control_validates(world, proxy):
    r = requests.post(proxy.url + "/faults", json={"upstream": "nope", "reset": 0.1}, timeout=10)
    assert r.status_code == 404
    r = requests.post(proxy.url + "/faults", json={"upstream": "aws", "bogus": 1}, timeout=10)
    assert r.status_code == 400
    r = requests.post(proxy.url + "/faults", json={"upstream": "aws", "reset": 0.7, "stall": 0.7}, timeout=10)
    assert r.status_code == 400
    ups = requests.get(proxy.url + "/upstreams", timeout=10).json()
    assert {"aws", "azure", "gcp", "kmip"} <= set(ups)


@pytest.mark.parametrize("provider", ["aws", "azure", "gcp"])
def test_libmongocrypt_retries_through_proxy(world, proxy, provider):
    """libmongocrypt retries network errors and HTTP 5xx/429 (not AWS's 400 ThrottlingException)."""
    vault, _, keys = _vault(world, provider, via_proxy=True)
    for _ in range(3):
        vault.create_data_key("local")
    upstream = provider
    before = proxy.counters()
    proxy.post("/faults", {"upstream": upstream,
                           "next": ["reset", "http503", "pass", "reset_after", "pass", "http500"]})
    assert vault.rewrap({}, provider, keys[provider]) == 3
    after = proxy.counters()
    for name in ("reset", "http503", "reset_after", "http500"):
        assert _delta(before, after, upstream, name) == 1


@pytest.mark.parametrize("source", ["imds", "ecs"])
def test_aws_credential_chain_from_metadata(world, ca, source):
    """boto3's own credential chain finds the temporary credentials; KMS accepts them."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_DEFAULT_REGION": world["KS_AWS_REGION"]})
    if source == "imds":
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = world["KS_AWS_IMDS_ENDPOINT"]
    else:
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = world["KS_AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = world["KS_AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    script = (
        "import boto3, sys\n"
        "s = boto3.Session()\n"
        "c = s.get_credentials().get_frozen_credentials()\n"
        "kms = s.client('kms', endpoint_url=sys.argv[1], verify=sys.argv[2])\n"
        "kms.encrypt(KeyId=sys.argv[3], Plaintext=b'x')\n"
        "print(c.access_key, bool(c.token))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, world["KS_AWS_URL"], ca, world["KS_AWS_KEY_ARN"]],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [world["KS_AWS_TEMP_ACCESS_KEY_ID"], "True"]


def test_aws_temporary_credentials_need_their_session_token(world, ca):
    import boto3
    from botocore.exceptions import ClientError

    tok = requests.put(world["KS_AWS_IMDS_ENDPOINT"] + "/latest/api/token",
                       headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}, timeout=10).text
    assert requests.get(world["KS_AWS_IMDS_ENDPOINT"] + "/latest/meta-data/iam/security-credentials/",
                        timeout=10).status_code == 401  # IMDSv1 refused
    base = world["KS_AWS_IMDS_ENDPOINT"] + "/latest/meta-data/iam/security-credentials/"
    role = requests.get(base, headers={"X-aws-ec2-metadata-token": tok}, timeout=10).text
    creds = requests.get(base + role, headers={"X-aws-ec2-metadata-token": tok}, timeout=10).json()
    assert creds["Code"] == "Success" and creds["AccessKeyId"].startswith("ASIA")
    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=world["KS_AWS_URL"], verify=ca,
                       aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"])
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=world["KS_AWS_KEY_ARN"], Plaintext=b"x")
    assert _aws_error(e)[0] == "UnrecognizedClientException"


# ===================================================================== bad TLS endpoints


@pytest.mark.parametrize("kind,reason", [
    ("EXPIRED", "certificate has expired"),
    ("WRONG_HOST", "IP address mismatch"),
    ("UNTRUSTED", "unable to get local issuer certificate"),
])
def test_bad_tls_endpoints_fail_verification_and_count_attempts(world, kind, reason):
    """Python's own TLS refuses each bad endpoint for the reason its name says, and the
    endpoint counts the attempt (keyshift's certificate tests rely on both)."""
    host, port = world[f"KS_BAD_TLS_{kind}"].rsplit(":", 1)
    counter = Path(world["KS_BAD_TLS_COUNTS"]) / f"{kind.lower().replace('_', '-')}.count"
    before = int(counter.read_text())
    ctx = ssl.create_default_context(cafile=world["KS_CA_FILE"])
    with pytest.raises(ssl.SSLCertVerificationError) as e:
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            ctx.wrap_socket(raw, server_hostname=host)
    assert reason in str(e.value)
    deadline = time.monotonic() + 10
    while int(counter.read_text()) != before + 1 and time.monotonic() < deadline:
        time.sleep(0.01)  # the server counts on accept, in its own thread
    assert int(counter.read_text()) == before + 1
