import sys

from score_chassis.http.app import serve
from score_indicators.main import build_app
from score_indicators.programme import ProgrammeError
from score_indicators.settings import IndicatorsSettings

settings = IndicatorsSettings()
try:
    app = build_app(settings)
except ProgrammeError as error:  # a bad programme file: say where, and stop
    print(f"indicators: the programme file cannot be used: {error}", file=sys.stderr)
    sys.exit(2)
serve(app, host=settings.http_host, port=settings.http_port)
