"""Alipay's payment products for agents, one module set per product, imported by name (nothing is loaded here).

A2M pay-per-use (HTTP 402) with this deployment as the merchant: ``headers.py`` (pure: the three headers,
the seller signature — shared with the emulator), ``a2m.py`` (orders, bills, proofs, verify/confirm, one
service per proof in the durable ledger), ``a2m_proxy.py`` (the LiteLLM proxy hook), ``a2m_asgi.py`` (the
same for any ASGI app), ``buyer.py`` (an httpx auth flow that pays a 402 through a wallet). Delegation Pay
(an agent pays within the user's mandate): ``delegation.py``, ``delegation_wire.py``, ``mandate.py``,
``delegation_actions.py``, ``delegation_notify.py``.
"""
