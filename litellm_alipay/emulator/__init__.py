"""A local Alipay AI gateway: the protocol of PROTOCOL.md from the gateway's side.

``create_app(config)`` is the ASGI app; ``python -m litellm_alipay.emulator`` (or
``litellm-alipay emulator``) serves it; ``EmulatorProcess`` runs it as a subprocess for tests and
benchmarks, and the ``alipay_emulator`` pytest fixture hands one out. Importing this package never
imports litellm, so the emulator starts fast.
"""

from .config import AppConfig, EmulatorConfig, FaultRule, QuotaConfig

__all__ = ["AppConfig", "EmulatorConfig", "FaultRule", "QuotaConfig", "create_app", "EmulatorProcess"]


def __getattr__(name: str):  # lazy: keep `import litellm_alipay.emulator` cheap
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "EmulatorProcess":
        from .process import EmulatorProcess

        return EmulatorProcess
    raise AttributeError(name)
