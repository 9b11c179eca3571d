"""What every page of the web app gets: the study, the database and the settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from xai_study.study.db import Database
    from xai_study.study.spec import StudySpec

#: Environment variable holding the password of the results page.
ADMIN_PASSWORD_ENV = "XAI_STUDY_ADMIN_PASSWORD"
#: Development fallback password, used only when not in production mode.
DEV_ADMIN_PASSWORD = "admin"
#: Environment variable with the secret that encrypts the browser's stored resume token
#: (default: one generated on first start and kept in the study's database).
STATE_SECRET_ENV = "XAI_STUDY_STATE_SECRET"


@dataclass
class AppContext:
    """Shared state of one ``xai-study serve`` process.

    ``admin_password`` is ``None`` when the results page must stay locked (production
    mode without ``XAI_STUDY_ADMIN_PASSWORD``). ``study_row_id`` is the id of the study
    in the database. ``state_secret`` encrypts what the survey keeps in browser storage
    (None: the one stored in the database, generated on first use). Pages must treat
    the context as read-only.
    """

    study: StudySpec
    db: Database
    admin_password: str | None = None
    production: bool = False
    models_dir: Path = field(default_factory=lambda: Path("models"))
    cache_dir: Path = field(default_factory=lambda: Path(".xai_study_cache"))
    max_upload_mb: float = 50.0
    study_row_id: int = 0
    state_secret: str | None = None
    #: serve the live demo page (``/demo``); ``serve --no-demo`` turns it off
    demo: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def study_dir(self) -> Path:
        return self.study.root

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def check_admin(self, password: str | None) -> bool:
        """Constant-time check of the results-page password (always False when locked)."""
        import hmac

        if not self.admin_password or not password:
            return False
        return hmac.compare_digest(str(password).encode(), self.admin_password.encode())


def is_loopback(host: str) -> bool:
    """Whether ``host`` (what the server listens on) is reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def admin_password_from_env(production: bool, host: str = "127.0.0.1") -> str | None:
    """The admin password: the env var, else ``admin`` in development on loopback, else
    None (the results page stays locked): never a fallback password off loopback."""
    value = os.environ.get(ADMIN_PASSWORD_ENV) or None
    if value is None and not production and is_loopback(host):
        return DEV_ADMIN_PASSWORD
    return value
