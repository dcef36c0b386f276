from score_chassis.http.app import serve
from score_visits.main import build_app
from score_visits.settings import VisitsSettings

settings = VisitsSettings()
serve(build_app(settings), host=settings.http_host, port=settings.http_port)
