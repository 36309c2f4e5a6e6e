"""No key in any log record, whichever logger makes it: with DEBUG on, httpcore prints a redirect's
`Location` header, which carries FRED's `api_key`; the same record reaches stderr and Dagster's event log."""

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from btc_platform.vendors.errors import BadRequestError
from btc_platform.vendors.http import VendorHTTP

SECRET = "f00dfeedf00dfeedf00dfeedf00d1234"  # never registered: the URL pattern alone must catch it


class _Redirect(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/fred/series/observations"
                                     f"?series_id=DGS10&api_key={SECRET}&file_type=json")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def redirect_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_redirects_location_never_logs_the_key(redirect_server, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger: httpx, httpcore.* and ours all propagate to it
    with VendorHTTP(vendor="fred", base_url=redirect_server, max_attempts=1) as http:
        with pytest.raises(BadRequestError) as err:
            http.get_json("/fred/series/observations", {"series_id": "DGS10", "api_key": SECRET},
                          endpoint="/fred/series/observations")
    header_dumps = [r for r in caplog.records if r.name.startswith("httpcore") and "Location" in r.getMessage()]
    assert header_dumps, "httpcore logged no response headers: the test would prove nothing"
    assert "api_key=***" in header_dumps[0].getMessage()
    assert SECRET not in caplog.text
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert SECRET not in str(err.value)


def test_a_key_in_an_exception_traceback_is_scrubbed(caplog):
    caplog.set_level(logging.DEBUG)
    try:
        raise RuntimeError(f"GET http://fred/?api_key={SECRET} failed")
    except RuntimeError:
        logging.getLogger("some.library").exception("request failed")
    assert "api_key=***" in caplog.text and SECRET not in caplog.text


@dg.asset
def _leaky(context: dg.AssetExecutionContext):
    context.log.info(f"following redirect to http://fred/series?api_key={SECRET}")
    logging.getLogger("httpcore.http11").debug(f"[(b'Location', b'http://fred/?api_key={SECRET}')]")


def test_dagster_event_log_holds_no_key():
    overrides = {"python_logs": {"managed_python_loggers": ["httpcore"], "python_log_level": "DEBUG"}}
    with dg.instance_for_test(overrides=overrides) as instance:
        result = dg.materialize([_leaky], instance=instance)
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("api_key=***" in m and "redirect" in m for m in messages)
    assert any("Location" in m for m in messages), "the managed httpcore logger did not reach the event log"
    assert all(SECRET not in m for m in messages)
