"""Agents paying per call: Alipay A2M (HTTP 402) with this deployment as the merchant.

``headers.py`` (pure: the three headers, the seller signature — shared with the emulator), ``a2m.py``
(orders, bills, proofs, verify/confirm, one service per proof in the durable ledger), ``a2m_proxy.py``
(the LiteLLM proxy hook), ``a2m_asgi.py`` (the same for any ASGI app), ``buyer.py`` (an httpx auth
flow that pays a 402 through a wallet). Import the module you need; this package imports nothing.
"""
