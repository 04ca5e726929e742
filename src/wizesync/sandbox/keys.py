"""The sandbox's GHL webhook signing key. DEVELOPMENT ONLY: it is public, anyone can sign with it.

A development service trusts its public half next to GHL's published key, so `wizesync trigger`
and the sandbox can send signed GHL events; production never trusts it.
"""

SANDBOX_GHL_PRIVATE_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIEHh+jhhjYrCqNxbyJgOk1xs5gSXvq52ptS1omKTUxJm
-----END PRIVATE KEY-----
"""

SANDBOX_GHL_PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAgGRoQCYdJmmJCdXbv8YPDp+aGwzgA4GLebQMONqd+GY=
-----END PUBLIC KEY-----
"""
