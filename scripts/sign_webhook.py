"""Sign a webhook body the way an upstream platform would (Standard Webhooks), for curl.

    eval "$(.venv/bin/python scripts/sign_webhook.py examples/order_created.json)"

prints shell assignments of WEBHOOK_ID, WEBHOOK_TIMESTAMP and WEBHOOK_SIGNATURE. The secret comes
from --secret, else from TRIBUTARY_WEBHOOK_SECRET_<FAMILY> (the Makefile sets a development one).
"""

from __future__ import annotations

import argparse
import shlex
import time
import uuid
from pathlib import Path

from pydantic import SecretStr

from api.signature import sign
from streams.settings import SandboxProcessSettings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("body", type=Path, help="the file curl will send (--data-binary @FILE)")
    parser.add_argument("--family", default="orders", choices=["orders", "users", "auth"])
    parser.add_argument("--secret", help="whsec_… secret; default: from the settings")
    parser.add_argument("--id", default=None, help="webhook-id; default: a fresh msg_<uuid>")
    args = parser.parse_args()

    # Without --secret, the secret the API checks this family's webhooks with. Read through the
    # sandbox's root, a signer's: the API's would refuse the development secrets outside dev
    # mode, which is the server's rule, not a signing tool's.
    webhook = SandboxProcessSettings().webhook
    secret = SecretStr(args.secret) if args.secret else webhook.secret_for(args.family)
    if secret is None:
        variable = f"TRIBUTARY_WEBHOOK_SECRET_{args.family.upper()}"
        parser.error(f"no secret: pass --secret or set {variable}")
    webhook_id = args.id or f"msg_{uuid.uuid4().hex}"
    timestamp_s = int(time.time())
    signature = sign(secret.get_secret_value(), webhook_id, timestamp_s, args.body.read_bytes())
    print(f"WEBHOOK_ID={shlex.quote(webhook_id)}")
    print(f"WEBHOOK_TIMESTAMP={timestamp_s}")
    print(f"WEBHOOK_SIGNATURE={shlex.quote(signature)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
