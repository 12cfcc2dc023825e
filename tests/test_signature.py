"""The X-Hub-Signature-256 check, against a published test vector and Meta's body encoding."""

from __future__ import annotations

import pytest

from inboxgpt.web.signature import is_valid_signature, sign

# GitHub's published example for SHA-256 webhook signatures (docs: "Validating webhook deliveries").
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_PAYLOAD = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_published_test_vector():
    assert sign(GITHUB_PAYLOAD, GITHUB_SECRET) == GITHUB_SIGNATURE
    assert is_valid_signature(GITHUB_PAYLOAD, GITHUB_SIGNATURE, GITHUB_SECRET)


def test_unicode_escaped_body_is_checked_as_sent():
    escaped = b'{"text":"caf\\u00e9 \\/ ok"}'
    reserialised = '{"text":"café / ok"}'.encode()
    header = sign(escaped, "secret")
    assert is_valid_signature(escaped, header, "secret")
    assert not is_valid_signature(reserialised, header, "secret")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha256",
        "sha1=" + "0" * 40,
        GITHUB_SIGNATURE[:-1],
        GITHUB_SIGNATURE + "0",
        "sha256=" + "é" * 64,
        "sha256=\x00",
        "md5=757107ea0eb2509fc211221cce984b8a",
    ],
)
def test_wrong_malformed_or_missing_headers_are_refused(header):
    assert is_valid_signature(GITHUB_PAYLOAD, header, GITHUB_SECRET) is False


def test_wrong_secret_or_changed_body_is_refused():
    assert not is_valid_signature(GITHUB_PAYLOAD, GITHUB_SIGNATURE, "another secret")
    assert not is_valid_signature(b"Hello, World?", GITHUB_SIGNATURE, GITHUB_SECRET)
    assert not is_valid_signature(GITHUB_PAYLOAD, GITHUB_SIGNATURE, "")


def test_uppercase_hex_is_accepted():
    assert is_valid_signature(GITHUB_PAYLOAD, "sha256=" + GITHUB_SIGNATURE[7:].upper(), GITHUB_SECRET)
