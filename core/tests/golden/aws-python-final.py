# keyshift final stage: `aws` only; deploy after `keyshift verify` passes.
# Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
# API: https://pymongo.readthedocs.io/en/stable/api/pymongo/encryption.html
#      https://pymongo.readthedocs.io/en/stable/api/pymongo/encryption_options.html
import base64
import os

from bson.binary import STANDARD
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.encryption import ClientEncryption
from pymongo.encryption_options import AutoEncryptionOpts

KEY_VAULT_NAMESPACE = "encryption.__keyVault"


def _read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def _read_text(path):
    return _read_bytes(path).decode().strip()


def _local_key(raw):
    """The local master key: 96 raw bytes, or their base64 text."""
    return raw if len(raw) == 96 else base64.b64decode(raw.strip())


def kms_providers():
    return {
        "aws": {
            "accessKeyId": os.environ["AWS_ACCESS_KEY_ID"],
            "secretAccessKey": os.environ["AWS_SECRET_ACCESS_KEY"],
        },
    }


def kms_tls_options():
    return {
        "aws": {
            "tlsCAFile": "ca.pem",
        },
    }


TARGET_PROVIDER = "aws"
TARGET_MASTER_KEY = {
    "region": "us-east-1",
    "key": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}


def connection_string():
    return os.environ["MONGODB_URI"]


def encrypted_client(uri=None):
    """A MongoClient that decrypts fields whose DEKs are under any provider above."""
    opts = AutoEncryptionOpts(
        kms_providers(),
        KEY_VAULT_NAMESPACE,
        bypass_auto_encryption=True,
        kms_tls_options=kms_tls_options(),
    )
    return MongoClient(uri or connection_string(), auto_encryption_opts=opts)


def client_encryption(key_vault_client):
    return ClientEncryption(
        kms_providers(),
        KEY_VAULT_NAMESPACE,
        key_vault_client,
        CodecOptions(uuid_representation=STANDARD),
        kms_tls_options=kms_tls_options(),
    )


def create_data_key(client_encryption, key_alt_names=None):
    """A new DEK under the target master key; returns its _id."""
    return client_encryption.create_data_key(
        TARGET_PROVIDER, master_key=TARGET_MASTER_KEY, key_alt_names=key_alt_names
    )
