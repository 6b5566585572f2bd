"""The wire format and its signing: pure (no I/O), shared by the client and the emulator.

``protocol`` holds method names, envelopes, result codes and SSE framing; ``signing`` the keys and
RSA2/RSA/HMAC, response verification, certificate SNs, v3 and AES. Nothing here imports anything
above it but ``errors``.
"""
