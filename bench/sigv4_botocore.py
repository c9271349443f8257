"""botocore's half of the SigV4 figure: signs the requests of bench/sigv4-requests.json with
botocore's SigV4Auth, over and over, and prints the same JSON object as `sigv4-bench` (our half).

Run by bench/run.py with the peer's interpreter (botocore as pinned in bench/peer/requirements.txt).
Usage: python3 bench/sigv4_botocore.py REQUESTS.json SIGNATURES
"""
import datetime
import json
import sys
import time
from unittest import mock

from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main() -> None:
    path, signatures = sys.argv[1], int(sys.argv[2])
    spec = json.load(open(path))
    c = spec["credentials"]
    credentials = Credentials(c["accessKeyId"], c["secretAccessKey"], c.get("sessionToken"))
    requests = []
    for r in spec["requests"]:
        headers = dict(r["headers"])
        url = f"https://{headers['Host']}{r['path']}"
        requests.append((auth.SigV4Auth(credentials, r["service"], spec["region"]),
                         AWSRequest(method=r["method"], url=url, data=r["body"].encode(), headers=headers)))

    check_time = datetime.datetime.strptime(spec["checkTime"], "%Y%m%dT%H%M%SZ")
    with mock.patch.object(auth, "get_current_datetime", return_value=check_time):
        for signer, request in requests:
            signer.add_auth(request)
        authorizations = [request.headers["Authorization"] for _, request in requests]

    start = time.process_time()   # CPU time, as sigv4-bench: independent of the machine's load
    for n in range(signatures):
        signer, request = requests[n % len(requests)]
        signer.add_auth(request)
    seconds = time.process_time() - start
    print(json.dumps({"authorizations": authorizations, "signatures": signatures, "seconds": seconds,
                      "perSecond": signatures / seconds}))


if __name__ == "__main__":
    main()
