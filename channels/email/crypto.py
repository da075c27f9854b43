"""Signed and encrypted mail: what of it can be read.

- **Signed** mail is readable: S/MIME (`multipart/signed` + `application/pkcs7-signature`) and
  PGP/MIME (`application/pgp-signature`) carry the text in an ordinary part and the signature
  as a file of its own (not stored: it is no document). An inline PGP signature (RFC 4880 §7,
  "-----BEGIN PGP SIGNED MESSAGE-----") wraps the text itself: the armor lines, the `Hash:`
  header and the signature block are removed and dash-escaped lines ("- -") restored, so
  neither the bot nor the redaction reads a block of base64 as the user's words.
- **Encrypted** mail is not: S/MIME `application/pkcs7-mime` (enveloped, or opaque-signed and
  compressed data the bot has no reader for), PGP/MIME `multipart/encrypted` and an inline
  "-----BEGIN PGP MESSAGE-----" with nothing else written around it. The support mailbox holds
  no private key, and it should not: such a mail is marked `unreadable`, and the sender is told
  to write again without encryption instead of getting an answer to the subject alone.
- A mail split with `message/partial` (RFC 2046 §5.2.2) is unreadable too: its parts are not
  put back together.
"""

from __future__ import annotations

import re

_SIGNED_HEAD = re.compile(r"^-----BEGIN PGP SIGNED MESSAGE-----[ \t]*\n(?:[A-Za-z-]+:[^\n]*\n)*[ \t]*\n", re.M)
_SIGNATURE = re.compile(r"^-----BEGIN PGP SIGNATURE-----.*?^-----END PGP SIGNATURE-----[ \t]*$\n?", re.M | re.S)
_MESSAGE = re.compile(r"^-----BEGIN PGP MESSAGE-----.*?(^-----END PGP MESSAGE-----[ \t]*$\n?|\Z)", re.M | re.S)
SMIME_ENCRYPTED = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
PGP_ENCRYPTED = frozenset({"multipart/encrypted", "application/pgp-encrypted"})


def pgp_cleartext(text: str) -> str:
    """The text of an inline PGP-signed message without its armor and signature; other text as is."""
    head = _SIGNED_HEAD.search(text)
    if head is None:
        return _SIGNATURE.sub("", text) if "-----BEGIN PGP SIGNATURE-----" in text else text
    signed_and_rest = text[head.end():]
    sig = _SIGNATURE.search(signed_and_rest)
    signed, rest = (signed_and_rest[: sig.start()], signed_and_rest[sig.end():]) if sig else (signed_and_rest, "")
    signed = "\n".join(line[2:] if line.startswith("- ") else line for line in signed.split("\n"))
    return (text[: head.start()] + signed + rest).strip("\n")


def unreadable(content_type: str, leaf_types: tuple[str, ...], body: str) -> str:
    """Why the bot cannot read this mail ("" when it can): `leaf_types` are the mail's own parts
    (not those of a mail forwarded inside it), `body` the text read from its text parts."""
    if content_type == "message/partial":
        return "sent in parts (message/partial), which are not put back together"
    if body.strip():
        inline = _MESSAGE.sub("", body) if "-----BEGIN PGP MESSAGE-----" in body else body
        return "" if inline.strip() else "encrypted with PGP"
    if content_type in SMIME_ENCRYPTED or SMIME_ENCRYPTED & set(leaf_types):
        return "encrypted with S/MIME"
    if content_type in PGP_ENCRYPTED or PGP_ENCRYPTED & set(leaf_types):
        return "encrypted with PGP"
    return ""
