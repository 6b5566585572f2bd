"""``python -m litellm_alipay.emulator``: the same as ``litellm-alipay emulator``."""

from .server import main

raise SystemExit(main())
