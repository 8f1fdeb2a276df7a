"""A deliberately fragile TLS client, shipped for the declarative tests.

It reads every file in $SSL_CERT_DIR before it connects, and does not catch the error when one
cannot be read: in the unreadable-file scenario it dies with a Python traceback (CRASHED),
where a robust client skips the entry. Otherwise it fetches argv[1], trusting
$SSL_CERT_FILE.
"""

import os
import ssl
import sys
import urllib.request

cert_dir = os.environ.get("SSL_CERT_DIR", "")
for name in sorted(os.listdir(cert_dir)) if cert_dir else []:
    path = os.path.join(cert_dir, name)
    if os.path.isfile(path):
        with open(path, "rb") as f:  # PermissionError escapes: the bug this client carries
            f.read()
context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"))
with urllib.request.urlopen(sys.argv[1], context=context, timeout=10) as response:
    response.read()
