"""Serving on a socket of our own: what the emulator, the payment notification receiver and the MCP server share.

Its own room so ``payments/`` and the CLI do not reach into ``emulator/`` for a listening socket.
"""
