from score_chassis.http.app import serve
from score_enrolment.main import build_app
from score_enrolment.settings import EnrolmentSettings

settings = EnrolmentSettings()
serve(build_app(settings), host=settings.http_host, port=settings.http_port)
