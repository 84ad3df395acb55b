"""gunicorn settings of the web process: ``gunicorn --config python:morosos.gunicorn_conf``
(Procfile, Dockerfile, docker-compose.yml). The other options stay on those command lines.

The access log writes each request line and its Referer: for the debtor's self-service page
that is ``/portal/<signed token>``, the debtor's credential. The logger below puts gunicorn's
access and error logs through the project's logging filter (``morosos.logging``), which masks
the token (``/portal/[enlace]``), e-mail addresses and phone numbers, as it does for Django's
own request logging.
"""

from gunicorn.glogging import Logger

from morosos.logging import RedactPersonalData


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)  # also called again on SIGHUP / log reopening
        for log in (self.access_log, self.error_log):
            if not any(isinstance(f, RedactPersonalData) for f in log.filters):
                log.addFilter(RedactPersonalData())


logger_class = "morosos.gunicorn_conf.RedactingLogger"
