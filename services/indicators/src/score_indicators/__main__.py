from score_chassis.http.app import serve
from score_indicators.main import build_app
from score_indicators.settings import IndicatorsSettings

settings = IndicatorsSettings()
serve(build_app(settings), host=settings.http_host, port=settings.http_port)
