"""Test-world plug-in: the AWS KMS stand-in (moto + kms_aws.py knobs) over TLS.

Starts kms_aws.py, then creates through the KMS API itself (boto3, SigV4-signed with
the fake credentials it exports) two symmetric keys and an alias for the first.

Exports:
    KS_AWS_ENDPOINT          127.0.0.1:PORT (libmongocrypt masterKey.endpoint form)
    KS_AWS_URL               https://127.0.0.1:PORT (SDK endpoint_url form)
    KS_AWS_CONTROL_URL       https://127.0.0.1:PORT/__ks (deny/disable/counters; see kms_aws.py)
    KS_AWS_REGION            us-east-1
    KS_AWS_ACCOUNT_ID        123456789012
    KS_AWS_ACCESS_KEY_ID / KS_AWS_SECRET_ACCESS_KEY   the only credentials it accepts
    KS_AWS_KEY_ARN / KS_AWS_KEY_ID                    the main key
    KS_AWS_ALIAS / KS_AWS_ALIAS_ARN                   alias/keyshift-test -> main key
    KS_AWS_KEY_ARN_2 / KS_AWS_KEY_ID_2                a second key (KMS to KMS moves)
    KS_AWS_IMDS_ENDPOINT                     http://127.0.0.1:PORT, EC2 IMDSv2 stand-in
                                             (AWS_EC2_METADATA_SERVICE_ENDPOINT)
    KS_AWS_CONTAINER_CREDENTIALS_FULL_URI    ECS container credentials stand-in
    KS_AWS_CONTAINER_AUTHORIZATION_TOKEN     (AWS_CONTAINER_AUTHORIZATION_TOKEN)
    KS_AWS_TEMP_ACCESS_KEY_ID                the key id both hand out (with a secret and a
                                             session token the KMS endpoint requires)
"""

from __future__ import annotations

import secrets

NAME = "aws"
ORDER = 20

ACCESS_KEY_ID = "AKIAKEYSHIFTTEST0001"
SECRET_ACCESS_KEY = "keyshift/test/secret/not/a/real/one/0001"
REGION = "us-east-1"
ALIAS = "alias/keyshift-test"


def start(ctx) -> dict[str, str]:
    import boto3
    from botocore.config import Config

    # ECDSA: the cheapest TLS handshake, and every KMS request is a new connection
    cert = ctx.ca.issue("aws", kind="server", key_type="ecdsa")
    port, md_port = ctx.free_port(), ctx.free_port()
    temp_akid = "ASIAKEYSHIFT" + secrets.token_hex(4).upper()
    temp = f"{temp_akid}:{secrets.token_urlsafe(30)}:{secrets.token_urlsafe(60)}"
    container_token = secrets.token_hex(16)
    proc = ctx.spawn(
        NAME,
        [ctx.python, str(ctx.services_dir / "kms_aws.py"), "--port", str(port),
         "--cert", str(cert.cert), "--key", str(cert.key), "--metadata-port", str(md_port)],
        env={"KS_AWS_CREDENTIALS": f"{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}", "KS_AWS_TEMP_CREDENTIALS": temp,
             "KS_AWS_CONTAINER_TOKEN": container_token},
    )
    ctx.wait_port(port, proc)
    ctx.wait_port(md_port, proc)
    # for plug-ins started after this one (svc_mongodb_auth: MONGODB-AWS); never exported
    ctx.aws_credentials = {
        "static": {"accessKeyId": ACCESS_KEY_ID, "secretAccessKey": SECRET_ACCESS_KEY},
        "temporary": dict(zip(("accessKeyId", "secretAccessKey", "sessionToken"), temp.split(":", 2))),
        "role": "keyshift-test-role",  # the role kms_aws.py's metadata endpoints name
    }
    url = f"https://127.0.0.1:{port}"
    kms = boto3.client(
        "kms", region_name=REGION, endpoint_url=url, verify=str(ctx.ca_file),
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 2}),
    )
    main = kms.create_key(Description="keyshift test key", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=main["KeyId"])
    second = kms.create_key(Description="keyshift test key 2", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    account = main["Arn"].split(":")[4]
    return {
        "KS_AWS_ENDPOINT": f"127.0.0.1:{port}",
        "KS_AWS_URL": url,
        "KS_AWS_CONTROL_URL": f"{url}/__ks",
        "KS_AWS_REGION": REGION,
        "KS_AWS_ACCOUNT_ID": account,
        "KS_AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "KS_AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "KS_AWS_KEY_ARN": main["Arn"],
        "KS_AWS_KEY_ID": main["KeyId"],
        "KS_AWS_ALIAS": ALIAS,
        "KS_AWS_ALIAS_ARN": f"arn:aws:kms:{REGION}:{account}:{ALIAS}",
        "KS_AWS_KEY_ARN_2": second["Arn"],
        "KS_AWS_KEY_ID_2": second["KeyId"],
        "KS_AWS_IMDS_ENDPOINT": f"http://127.0.0.1:{md_port}",
        "KS_AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{md_port}/ecs/credentials",
        "KS_AWS_CONTAINER_AUTHORIZATION_TOKEN": container_token,
        "KS_AWS_TEMP_ACCESS_KEY_ID": temp_akid,
    }
