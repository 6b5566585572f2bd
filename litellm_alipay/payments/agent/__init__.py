"""Alipay's payment products for agents (``shared/reference/ALIPAY_AGENT_PAYMENTS.md``): one module set per
product, imported by name (nothing is loaded here)."""
