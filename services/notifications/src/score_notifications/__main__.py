import sys

from score_chassis.http.app import serve
from score_notifications.main import build_app
from score_notifications.settings import NotificationsSettings

settings = NotificationsSettings()
try:
    app = build_app(settings)
except (RuntimeError, ValueError) as error:  # no key, or one too short: say so, and stop
    print(f"notifications: {error}", file=sys.stderr)
    sys.exit(2)
serve(app, host=settings.http_host, port=settings.http_port)
