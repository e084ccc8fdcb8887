"""WeCom callback cryptography (../shared/reference/wecom.md), written here rather than taken
from a WeCom SDK: the official Python sample is unmaintained Python 2 code and the PyPI SDKs
wrap it. AES itself comes from ``cryptography``.

    msg_signature = sha1(sorted([token, timestamp, nonce, encrypt]) joined)   (hex)
    Encrypt = base64(AES-256-CBC(key, iv=key[:16], random16 ‖ len32be ‖ msg ‖ receiveid ‖ pkcs7/32))

Every failure is a ``CallbackRejected`` with a stable reason code; the callback endpoint
counts rejections by that code and never says more to the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from caifu.core.errors import CaifuError

BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16
MAX_ENCRYPT_CHARS = 256 * 1024  # a callback body is a few KB; anything near this is hostile


class CallbackRejected(CaifuError):
    """A callback that must not be processed; ``reason`` is a stable code for counting."""

    code = "wecom.callback_rejected"

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte key from the 43-character EncodingAESKey."""
    if len(encoding_aes_key) != 43:
        raise ValueError("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as e:
        raise ValueError("EncodingAESKey is not base64") from e
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def pkcs7_pad(data: bytes) -> bytes:
    n = BLOCK - len(data) % BLOCK
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes) -> bytes:
    """Strict: 1 ≤ pad ≤ 32 and every padding byte equal to pad."""
    if not data or len(data) % 16:
        raise CallbackRejected("BAD_PADDING", "ciphertext length")
    n = data[-1]
    if not 1 <= n <= BLOCK or n > len(data) or data[-n:] != bytes([n]) * n:
        raise CallbackRejected("BAD_PADDING")
    return data[:-n]


class WeComCrypto:
    """One app's callback crypto: its Token, EncodingAESKey and receive id (the CorpID)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return signature(self.token, timestamp, nonce, encrypt)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = self.sign(timestamp, nonce, encrypt)
        # constant time: a byte-by-byte early exit would let a caller find the signature
        if not hmac.compare_digest(expected.encode(), msg_signature.lower().encode("utf-8",
                                                                                   "replace")):
            raise CallbackRejected("BAD_SIGNATURE")

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def decrypt(self, encrypt: str) -> bytes:
        """The message bytes (UTF-8 XML, or the echostr) after every check."""
        if len(encrypt) > MAX_ENCRYPT_CHARS:
            raise CallbackRejected("TOO_LARGE")
        try:
            ct = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as e:
            raise CallbackRejected("BAD_BASE64") from e
        if not ct or len(ct) % 16:
            raise CallbackRejected("BAD_CIPHERTEXT", "length")
        d = self._cipher().decryptor()
        content = pkcs7_unpad(d.update(ct) + d.finalize())[16:]
        if len(content) < 4:
            raise CallbackRejected("BAD_CIPHERTEXT", "too short")
        (n,) = struct.unpack(">I", content[:4])
        if 4 + n > len(content):
            raise CallbackRejected("BAD_CIPHERTEXT", "message length")
        msg, receive_id = content[4:4 + n], content[4 + n:]
        if not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise CallbackRejected("WRONG_RECEIVE_ID")
        return msg

    def encrypt(self, msg: bytes, random16: bytes | None = None) -> str:
        """Base64 Encrypt for a message (a passive reply, or a test's / the fake's callback)."""
        r = os.urandom(16) if random16 is None else random16
        if len(r) != 16:
            raise ValueError("random16 must be 16 bytes")
        plain = pkcs7_pad(r + struct.pack(">I", len(msg)) + msg + self.receive_id.encode())
        e = self._cipher().encryptor()
        return base64.b64encode(e.update(plain) + e.finalize()).decode()
