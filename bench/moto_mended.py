"""moto's server with the one S3 answer the Rust SDK cannot parse mended: `GetBucketVersioning` (moto 5.2.5
names the root element `GetBucketVersioningResponse`; AWS, and the SDK's parser, `VersioningConfiguration`).
The integration tests mend it in their proxy (tests/it/proxy.rs); the benches start moto through this.

    python bench/moto_mended.py -H 127.0.0.1 -p PORT
"""
import sys

import moto.s3.responses as responses
from moto.server import main


def get_bucket_versioning(self):
    status = self.backend.get_bucket_versioning(self.bucket_name)
    inner = f"<Status>{status}</Status>" if status else ""
    return 200, {}, (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</VersioningConfiguration>'
    )


responses.S3Response.get_bucket_versioning = get_bucket_versioning
main(sys.argv[1:])
