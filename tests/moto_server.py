"""moto_server, with KMS `Sign` answering as the AWS KMS API reference says it does.

moto 5.2.5 signs whatever `Message` it is sent as a raw message (its own docstring: "The MessageType-parameter
DIGEST is not yet implemented") and accepts any length. AWS KMS:
  - MessageType RAW: "the message must be 4096 bytes or less"; longer is a ValidationException;
  - MessageType DIGEST: the message is already the hash (32 bytes for ECDSA_SHA_256) and is signed as is.
The integration tests start this instead of `moto_server`, so a drill that signs a whole report raw fails here
as it would on AWS, and a digest signature verifies with `openssl dgst -sha256 -verify` over the report.
Usage: python tests/moto_server.py [moto_server arguments]
"""

import base64
import json
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from moto.kms import responses
from moto.kms.exceptions import ValidationException
from moto.server import main

RAW_LIMIT = 4096
DIGEST_SIZES = {"ECDSA_SHA_256": 32, "ECDSA_SHA_384": 48, "ECDSA_SHA_512": 64}
HASHES = {"ECDSA_SHA_256": hashes.SHA256(), "ECDSA_SHA_384": hashes.SHA384(), "ECDSA_SHA_512": hashes.SHA512()}

moto_sign = responses.KmsResponse.sign


def sign(self):
    message = self._get_param("Message") or b""
    message_type = self._get_param("MessageType") or "RAW"
    algorithm = self._get_param("SigningAlgorithm")
    if message_type == "RAW":
        if len(message) > RAW_LIMIT:
            raise ValidationException(
                "1 validation error detected: Value at 'message' failed to satisfy constraint: "
                "Member must have length less than or equal to 4096"
            )
        return moto_sign(self)
    if algorithm not in DIGEST_SIZES or len(message) != DIGEST_SIZES[algorithm]:
        raise ValidationException(f"Digest is invalid length for algorithm {algorithm}")
    key = self.kms_backend.describe_key(self._get_param("KeyId"))
    signature = key.private_key.private_key.sign(message, ec.ECDSA(utils.Prehashed(HASHES[algorithm])))
    return json.dumps(
        {"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(), "SigningAlgorithm": algorithm}
    )


responses.KmsResponse.sign = sign

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
