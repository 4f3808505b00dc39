-- A new connection per request: every request asks the server to close, and
-- wrk reconnects after each response.
wrk.headers["Connection"] = "close"
