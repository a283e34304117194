"""A --wsgi-file app; / answers with the module's name."""
import sibling


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [__name__.encode(), b" ", sibling.WORD]
