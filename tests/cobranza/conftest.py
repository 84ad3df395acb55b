import pytest

from tests.smtp import SMTPServer


@pytest.fixture
def smtp(settings):
    """A real SMTP server (aiosmtpd) on a free port; Django's SMTP backend points at it."""
    server = SMTPServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "Cobranza <cobranza@morosos.example>"
    yield server
    server.stop()


@pytest.fixture
def outbox(settings, tmp_path):
    """SMS/WhatsApp file backend and letter PDFs under the test's own folder."""
    settings.DUNNING_OUTBOX_DIR = tmp_path / "outbox"
    settings.MEDIA_ROOT = tmp_path / "media"
    return tmp_path
