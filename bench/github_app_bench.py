"""What authenticating as a GitHub App costs: signing the JWT, minting an installation token, and how many
extra requests an hour the refresh adds, on the fake GitHub (real PyGithub, real HTTP on 127.0.0.1, the fake
verifying each RS256 JWT with the app's public key).

Why: the App buys a budget of its own (5,000 requests an hour and up, not shared with the user's tools); the
price is one ``POST /app/installations/{id}/access_tokens`` whenever the token nears its end. This prints the
figures so that price is known: milliseconds per JWT (RS256, 2048-bit key), per mint (JWT + round trip on
the fake: no network latency, real GitHub adds its own), and mints per hour with GitHub's one-hour tokens
renewed five minutes early (``REFRESH_MARGIN``), against a tick's own requests.

Run: ``.venv/bin/python bench/github_app_bench.py [--json]``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth

from monitor.world.github_auth import REFRESH_MARGIN, AppCredentials, InstallationTokens

APP_ID = 4242
INSTALLATION = 77
ROUNDS = 30


def _keys() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def app_figures() -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the fake lives under tests/
    from tests.fakes.github_server import FakeGitHub

    private, public = _keys()
    auth = Auth.AppAuth(str(APP_ID), private)
    signs = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        auth.create_jwt()
        signs.append(time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "r.git"
        import subprocess

        subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
        with FakeGitHub() as fake:
            fake.add_repo("acme", "shop", bare)
            fake.add_app(APP_ID, public, INSTALLATION)
            mints = []
            for _ in range(ROUNDS):
                tokens = InstallationTokens(AppCredentials(str(APP_ID), INSTALLATION, private), fake.url)
                started = time.perf_counter()
                tokens.token()
                mints.append(time.perf_counter() - started)
            reused = InstallationTokens(AppCredentials(str(APP_ID), INSTALLATION, private), fake.url)
            reused.token()
            started = time.perf_counter()
            for _ in range(1000):
                reused.token()
            per_reuse = (time.perf_counter() - started) / 1000
            assert len(fake.tokens_minted) == ROUNDS + 1 and fake.refused_tokens == []
    life = 3600.0
    return {
        "jwt_sign_ms_median": statistics.median(signs) * 1000,
        "mint_ms_median": statistics.median(mints) * 1000,
        "token_reuse_us": per_reuse * 1e6,
        "mints_per_hour": 3600.0 / (life - REFRESH_MARGIN),
    }


def main() -> None:
    figures = app_figures()
    if "--json" in sys.argv:
        print(json.dumps(figures, indent=2))
        return
    print(f"JWT signed (RS256, 2048-bit key): median {figures['jwt_sign_ms_median']:.2f} ms over {ROUNDS}")
    print(f"installation token minted on the fake (JWT + POST, verified): median {figures['mint_ms_median']:.1f} ms "
          f"over {ROUNDS}")
    print(f"current token handed out again (no request): {figures['token_reuse_us']:.1f} µs")
    print(f"token requests an hour with one-hour tokens renewed {REFRESH_MARGIN / 60:.0f} min early: "
          f"{figures['mints_per_hour']:.2f} (the App's budget: 5,000 an hour and up)")


if __name__ == "__main__":
    main()
